"""The hot statements straight to the database driver (issue #12): ``sqlite3`` through
the inline connection, ``asyncpg`` on PostgreSQL, inside the transaction the Store
opened on the same connection.

SQLAlchemy Core costs about 0.35 ms of CPU per statement here (compile-cache lookup,
parameter processing, result metadata, the greenlet bridge) against microseconds for
SQLite to run it, so the statements every job runs (accept, start, complete, the key
check) are written as SQL text with numbered parameters (``$1``; SQLite reads them as
``?1``). SQLAlchemy keeps the schema, the Alembic migrations and the cold paths.

Values cross as the driver takes them: datetimes through :meth:`Driver.ts` /
:meth:`Driver.dt` (SQLite stores SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text,
PostgreSQL ``timestamptz``), JSON as text on both."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import asyncpg

Row = Sequence[Any]

#: SQLAlchemy's SQLite DATETIME storage format (sqlalchemy.dialects.sqlite.DATETIME),
#: ``%Y-%m-%d %H:%M:%S.%f``, which ``isoformat(" ", "microseconds")`` of a naive UTC
#: datetime writes: the same text, so raw and Core statements read and compare each
#: other's values. ``_last_text``: the last datetime SqliteDriver.ts bound, and its text
#: (one tuple, replaced whole, so a reader never pairs one value with another's text).
_last_text: tuple[datetime | None, str] = (None, "")
_NUMBERED = re.compile(r"\$(\d+)")


class Driver(Protocol):
    """One connection inside an open transaction. ``sql`` uses ``$1``… parameters."""

    dialect: str

    async def execute(self, sql: str, *args: Any) -> int:
        """Runs a statement; returns the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Runs a statement once per parameter tuple."""
        ...

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        """The first row of the result (indexable by position), or None."""
        ...

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        """Every row of the result."""
        ...

    def ts(self, value: datetime | None) -> Any:
        """An aware datetime as this driver binds it. Raises ValueError when naive."""
        ...

    def dt(self, value: Any) -> datetime:
        """A stored (non-null) datetime read back as an aware UTC datetime."""
        ...


def json_in(value: list[str] | None) -> str | None:
    """A JSON column's value as bound (text; None stays SQL NULL)."""
    return None if value is None else json.dumps(value)


def json_out(value: Any) -> Any:
    """A JSON column's value read back (SQL NULL and JSON null both as None): text on
    SQLite, already decoded on PostgreSQL (SQLAlchemy's asyncpg codec)."""
    return json.loads(value) if isinstance(value, str) else value


def id_list(driver: Driver, ids: list[str]) -> Any:
    """``ids`` as ONE parameter, for ``IN (SELECT value FROM json_each($n))`` on SQLite
    (JSON text) and ``= ANY($n::text[])`` on PostgreSQL (an array): one statement text
    for any number of ids, where a parameter per id would make (and cache) a statement
    per length, and stay under the drivers' parameter limits."""
    return ids if driver.dialect == "postgresql" else json.dumps(ids)


@functools.cache
def in_id_list(dialect: str, column: str, n: int = 1) -> str:
    """The SQL condition "``column`` is one of the ids bound as ``$n``" for the value
    :func:`id_list` binds on ``dialect`` ("sqlite" or "postgresql")."""
    if dialect == "postgresql":
        return f"{column} = ANY(${n}::text[])"
    return f"{column} IN (SELECT value FROM json_each(${n}))"


def opt_dt(driver: Driver, value: Any) -> datetime | None:
    """A nullable stored datetime read back (``Driver.dt``), None for SQL NULL."""
    return None if value is None else driver.dt(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC)


class SqliteDriver:
    """``sqlite3`` calls on the event loop (they take microseconds: sqlite_inline.py)."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection

    @staticmethod
    def _sql(sql: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - a memo on purpose
        text = cache.get(sql)
        if text is None:
            text = cache[sql] = _NUMBERED.sub(r"?\1", sql)
        return text

    async def execute(self, sql: str, *args: Any) -> int:
        return self._conn.execute(self._sql(sql), args).rowcount

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._conn.executemany(self._sql(sql), rows)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._conn.execute(self._sql(sql), args).fetchone()
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(self._sql(sql), args).fetchall()

    def ts(self, value: datetime | None) -> Any:
        if value is None:
            return None
        # A transaction binds its one "now" several times (a completion: the transition,
        # the settlement, the task, the calls): the last value's text is kept. Equal aware datetimes are the same UTC instant,
        # so they share one text.
        global _last_text  # noqa: PLW0603 - a one-entry memo
        last, text = _last_text
        if last == value:
            return text
        text = _utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
        _last_text = (value, text)
        return text

    def dt(self, value: Any) -> datetime:
        try:
            # The stored text with its UTC offset: parsed straight into an aware datetime
            # (a fifth of the CPU of parsing and then replacing tzinfo).
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)


class PgDriver:
    """``asyncpg``: each statement is prepared once per connection (asyncpg's cache)."""

    dialect = "postgresql"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._conn = connection

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._conn.execute(sql, *args)
        # "UPDATE 1", "INSERT 0 1", "DELETE 0": the count is the last word.
        return int(status.rsplit(" ", 1)[-1])

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        # asyncpg's Record is a read-only sequence at run time; its stubs do not say so.
        return cast(Row | None, await self._conn.fetchrow(sql, *args))

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return cast(list[Row], await self._conn.fetch(sql, *args))

    def ts(self, value: datetime | None) -> Any:
        return None if value is None else _utc(value)

    def dt(self, value: Any) -> datetime:
        return cast(datetime, value.astimezone(UTC))
