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
from services.tasks.storage.driver import Driver, PgDriver, SqliteDriver
from services.tasks.storage.jobs import Jobs
from services.tasks.storage.ledger import Ledger
from services.tasks.storage.tasks import Tasks
from services.tasks.storage.users import Users
from services.tasks.storage.webhooks import Webhooks


class Tx:
    """One transaction (``ports.Tx``). ``c`` is its SQLAlchemy connection (cold
    statements, the outbox relay, tests that read tables directly) and ``driver`` the
    same connection's driver (the hot statements, ``driver.py``)."""

    def __init__(self, connection: AsyncConnection, driver: Driver) -> None:
        self.c = connection
        self.driver = driver
        self.users = Users(connection, driver)
        self.ledger = Ledger(connection, driver)
        self.tasks = Tasks(connection, driver)
        self.jobs = Jobs(connection, driver, self.tasks)
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
        async with self._transaction(self.engine, write=True) as tx:
            yield tx

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._transaction(self._read_engine, write=False) as tx:
            yield tx

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine, *, write: bool) -> AsyncIterator[Tx]:
        """Begins on the driver, so the hot statements (``driver.py``) pay no SQLAlchemy
        transaction; a Core statement inside joins it (SQLite: the begin hook in db.py
        sees the transaction open; PostgreSQL: asyncpg nests it as a savepoint)."""
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            if self._dialect == "postgresql":
                pg = raw.transaction(isolation="read_committed", readonly=not write)
                await pg.start()
                try:
                    yield Tx(connection, PgDriver(raw))
                    if connection.in_transaction():
                        await connection.commit()
                except BaseException:
                    try:
                        if connection.in_transaction():
                            await connection.rollback()
                        await pg.rollback()
                    except Exception:
                        # The connection is gone (database restart): the pool drops it
                        # instead of handing it out again; the caller hears the first error.
                        await connection.invalidate()
                    raise
                await pg.commit()
                return
            sqlite = raw.sqlite
            # Writers queue on the one-connection write pool (db.py), so IMMEDIATE
            # takes the lock at once; readers never wait for the writer (WAL).
            sqlite.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(connection, SqliteDriver(sqlite))
                if connection.in_transaction():
                    await connection.commit()  # commits the driver's transaction
                else:
                    sqlite.commit()
            except BaseException:
                sqlite.rollback()
                raise
