"""Engine, sessions and migrations.

SQLite (the default) allows one writer at a time. Every transaction starts
with BEGIN IMMEDIATE, so writers queue on the database lock (busy_timeout)
instead of failing with "database is locked" when a read upgrades to a write.
PostgreSQL uses row locks (SELECT … FOR UPDATE) and conditional updates."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    create_async_engine,
)

from services.tasks.storage import sqlite_inline

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, read_only: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        # One write connection, which the Store keeps: its writers queue on a lock
        # (awaiting, no CPU) rather than in SQLite's busy handler. Readers share a few.
        engine = create_async_engine(
            url,
            async_creator=sqlite_inline.connector(make_url(url).database or ":memory:"),
            pool_size=4 if read_only else 1,
            max_overflow=0,
            pool_timeout=60,
            pool_reset_on_return=None,
            # A failed statement's parameters hold what it wrote (a webhook's signing secret,
            # a key's hash): never in an exception's text, so never in a log line.
            hide_parameters=True,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so "begin" below decides.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(sqlite_inline.BUSY_TIMEOUT_S * 1000)}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Store.write()/read() begin on the driver themselves; a Core statement
            # inside then joins that transaction instead of starting another.
            # An InlineConnection (sqlite_inline.py): SQLAlchemy types it as any driver's.
            inline: Any = conn.connection.driver_connection
            if not inline.sqlite.in_transaction:
                conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_reset_on_return=None,
        hide_parameters=True,
    )


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Applies pending migrations. On PostgreSQL an advisory lock makes
    concurrent starts wait for each other instead of racing."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def wait_for_database(engine: AsyncEngine, attempts: int = 30) -> None:
    """The database may still be starting (compose, CI): retry briefly at start."""
    for attempt in range(attempts):
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
            return
        except Exception as exc:  # noqa: BLE001 - any driver error means "not yet"
            if attempt == attempts - 1:
                raise
            log.warning("database not ready (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1)
