"""The Tasks service's storage: the adapter of ``domain.ports.Store``.

``Store.write()`` opens a transaction (the unit of consistency: CompleteJob runs
entirely inside one); ``Store.read()`` a read-only one. A ``Tx`` reaches each area's
statements through one attribute (``tx.jobs``, ``tx.ledger``, ``tx.tasks``,
``tx.users``, ``tx.webhooks``), all on the transaction's one connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tasks.storage import db
from services.tasks.storage.jobs import Jobs
from services.tasks.storage.ledger import Ledger
from services.tasks.storage.tasks import Tasks
from services.tasks.storage.users import Users
from services.tasks.storage.webhooks import Webhooks


class Tx:
    """One transaction (``ports.Tx``). ``c`` is its SQLAlchemy connection, for the
    outbox relay and tests that read tables directly."""

    def __init__(self, connection: AsyncConnection, dialect: str) -> None:
        self.c = connection
        self.users = Users(connection)
        self.ledger = Ledger(connection, dialect)
        self.tasks = Tasks(connection)
        self.jobs = Jobs(connection, dialect, self.tasks)
        self.webhooks = Webhooks(connection)

    # `taskmesh ledger check` (taskmesh/cli/admin.py) still opens the database itself
    # and reads through these two; they go once it asks the Tasks service instead
    # (issue #15 point 1; domain.queries.JobQueries.ledger_check is that read).
    async def ledger_rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """``ledger.rows()``."""
        return await self.ledger.rows()

    async def ledger_job_mismatches(self) -> list[tuple[str, int, int]]:
        """``ledger.job_mismatches()``."""
        return await self.ledger.job_mismatches()


class Store:
    """Owns the engines (``ports.Store``). On SQLite, reads use their own connections
    without BEGIN IMMEDIATE, so they never wait for the write lock (WAL readers).
    ``url``: an SQLAlchemy async URL (``sqlite+aiosqlite:///…``,
    ``postgresql+asyncpg://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = db.create_engine(url)
        self._read_engine: AsyncEngine = (
            db.create_engine(url, read_only=True) if db.is_sqlite(url) else self.engine
        )
        self._dialect = self.engine.dialect.name

    async def open(self) -> None:
        """Waits for the database (up to ~30 s) and migrates it to the head revision."""
        await db.wait_for_database(self.engine)
        await db.migrate(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self.engine.begin() as connection:
            yield Tx(connection, self._dialect)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._read_engine.connect() as connection, connection.begin():
            yield Tx(connection, self._dialect)
