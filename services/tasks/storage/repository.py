"""The Tasks service's storage: the adapter of ``domain.ports.Store``.

``Store.write()`` opens a transaction (the unit of consistency: CompleteJob runs
entirely inside one); ``Store.read()`` a read-only one. A ``Tx`` reaches each area's
statements through one attribute (``tx.jobs``, ``tx.ledger``, ``tx.tasks``,
``tx.users``, ``tx.webhooks``), all on the transaction's one connection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

import asyncpg
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
    same connection's driver (the hot statements, ``driver.py``). A write transaction
    calls :meth:`flush` before it commits."""

    def __init__(self, connection: AsyncConnection, driver: Driver) -> None:
        self.c = connection
        self.driver = driver
        self.users = Users(connection, driver)
        self.ledger = Ledger(connection, driver)
        self.tasks = Tasks(connection, driver)
        self.jobs = Jobs(connection, driver, self.tasks)
        self.webhooks = Webhooks(connection)

    async def flush(self) -> None:
        """Writes what the areas hold back until the commit (the ledger's window moves and
        recorded calls, the tasks' subtasks)."""
        await self.tasks.flush()
        await self.ledger.flush()


class Store:
    """Owns the engines (``ports.Store``). ``url``: an SQLAlchemy async URL
    (``sqlite+aiosqlite:///…``, ``postgresql+asyncpg://…``).

    SQLite allows one writer: the Store keeps its one write connection checked out and
    writers queue on a lock (FIFO, awaiting without CPU), so a write transaction costs
    BEGIN IMMEDIATE and COMMIT and nothing of the pool. Reads use their own connections
    without IMMEDIATE, so they never wait for the writer (WAL readers)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = db.create_engine(url)
        self._read_engine: AsyncEngine = (
            db.create_engine(url, read_only=True) if db.is_sqlite(url) else self.engine
        )
        self._dialect = self.engine.dialect.name
        self._writer: AsyncConnection | None = None
        self._writer_sqlite: sqlite3.Connection | None = None
        self._writer_lock = asyncio.Lock()

    async def open(self) -> None:
        """Waits for the database (up to ~30 s) and migrates it to the head revision."""
        await db.wait_for_database(self.engine)
        await db.migrate(self.engine)

    async def close(self) -> None:
        async with self._writer_lock:
            if self._writer is not None:
                await self._writer.close()
                self._writer = self._writer_sqlite = None
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()

    def write(self) -> AbstractAsyncContextManager[Tx]:
        if self._dialect == "postgresql":
            return self._pg_write()
        return _SqliteWrite(self)

    @asynccontextmanager
    async def _pg_write(self) -> AsyncIterator[Tx]:
        async with (
            self.engine.connect() as connection,
            _pg_transaction(connection, write=True) as tx,
        ):
            yield tx

    async def _sqlite_writer(self) -> tuple[AsyncConnection, sqlite3.Connection]:
        """The write connection, taken once (under the writer lock): the write pool holds
        this one connection."""
        if self._writer is None or self._writer_sqlite is None:
            self._writer = await self.engine.connect()
            self._writer_sqlite = await _sqlite_of(self._writer)
        return self._writer, self._writer_sqlite

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._read_engine.connect() as connection:
            if self._dialect == "postgresql":
                async with _pg_transaction(connection, write=False) as tx:
                    yield tx
            else:
                sqlite = await _sqlite_of(connection)
                async with _sqlite_read(connection, sqlite) as tx:
                    yield tx


class _SqliteWrite:
    """``Store.write()`` on SQLite: the writer lock, BEGIN IMMEDIATE on the write
    connection, COMMIT (ROLLBACK when the block raises, or the commit does), the lock
    released. Written out as a class rather than as two nested generator-based context
    managers (the lock's and the transaction's): every batch of every RPC opens one."""

    __slots__ = ("_connection", "_sqlite", "_store", "_tx")

    def __init__(self, store: Store) -> None:
        self._store = store

    async def __aenter__(self) -> Tx:
        lock = self._store._writer_lock
        await lock.acquire()
        try:
            self._connection, self._sqlite = await self._store._sqlite_writer()
            self._sqlite.execute("BEGIN IMMEDIATE")
        except BaseException:
            lock.release()
            raise
        self._tx = Tx(self._connection, SqliteDriver(self._sqlite))
        return self._tx

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    await self._tx.flush()
                    await _sqlite_end(self._connection, self._sqlite, commit=True)
                except BaseException:
                    await _sqlite_end(self._connection, self._sqlite, commit=False)
                    raise
            else:
                await _sqlite_end(self._connection, self._sqlite, commit=False)
        finally:
            self._store._writer_lock.release()


# Transactions begin on the driver, so the hot statements (driver.py) pay nothing of
# SQLAlchemy's transaction machinery; a Core statement inside joins the transaction
# (SQLite: the begin hook in db.py sees it open; PostgreSQL: asyncpg nests it as a
# savepoint).


async def _sqlite_of(connection: AsyncConnection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a pooled one (sqlite_inline.InlineConnection)."""
    inline: Any = (await connection.get_raw_connection()).driver_connection
    return cast(sqlite3.Connection, inline.sqlite)


@asynccontextmanager
async def _sqlite_read(
    connection: AsyncConnection, sqlite: sqlite3.Connection
) -> AsyncIterator[Tx]:
    """A read transaction (a plain BEGIN: WAL readers never wait for the writer)."""
    sqlite.execute("BEGIN")
    try:
        yield Tx(connection, SqliteDriver(sqlite))
        await _sqlite_end(connection, sqlite, commit=True)
    except BaseException:
        await _sqlite_end(connection, sqlite, commit=False)
        raise


async def _sqlite_end(
    connection: AsyncConnection, sqlite: sqlite3.Connection, *, commit: bool
) -> None:
    """Commits (or rolls back) the driver's transaction: through SQLAlchemy when a Core
    statement joined it (so SQLAlchemy's connection leaves its transaction too), else on
    the driver."""
    if connection.in_transaction():
        await (connection.commit() if commit else connection.rollback())
    elif commit:
        sqlite.commit()
    else:
        sqlite.rollback()


@asynccontextmanager
async def _pg_transaction(connection: AsyncConnection, *, write: bool) -> AsyncIterator[Tx]:
    raw = cast(asyncpg.Connection, (await connection.get_raw_connection()).driver_connection)
    pg = raw.transaction(isolation="read_committed", readonly=not write)
    await pg.start()
    try:
        tx = Tx(connection, PgDriver(raw))
        yield tx
        if write:
            await tx.flush()
        if connection.in_transaction():
            await connection.commit()
    except BaseException:
        try:
            if connection.in_transaction():
                await connection.rollback()
            await pg.rollback()
        except Exception:
            # The connection is gone (database restart): the pool drops it instead
            # of handing it out again; the caller hears the first error.
            await connection.invalidate()
        raise
    await pg.commit()
