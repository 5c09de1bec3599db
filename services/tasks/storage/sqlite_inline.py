"""An aiosqlite-compatible connection that runs SQLite calls inline.

aiosqlite moves every call (execute, fetch, commit, …) to a thread and back:
about twenty thread hops per job, which cost more CPU than the SQL itself.
SQLite statements on a local WAL database take microseconds and commits do
not fsync (synchronous=NORMAL), so this adapter runs them on the event loop
and hands SQLAlchemy's aiosqlite dialect already-finished awaitables.

The trade-off: a statement that waits for another *process's* write lock
blocks the loop for up to ``busy_timeout``. Within the Tasks process writers
queue on the Store's one write connection instead (repository.py); other processes
(``taskmesh users`` commands) write rarely and briefly.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0


class _Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _CursorContext:
    """What aiosqlite's ``cursor()`` returns: usable with ``async with``/await."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def __aenter__(self) -> _Cursor:
        return _Cursor(self._connection.cursor())

    async def __aexit__(self, *exc: object) -> None:
        return None


class _ImmediateQueue:
    """Stands in for aiosqlite's work queue, which SQLAlchemy uses to set the
    isolation level: runs the function at once and resolves its future."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself (driver.SqliteDriver runs on it)."""
        assert self._conn is not None
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        assert self._conn is not None
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Literal["DEFERRED", "EXCLUSIVE", "IMMEDIATE"] | None) -> None:
        assert self._conn is not None
        self._conn.isolation_level = value

    def cursor(self) -> _CursorContext:
        assert self._conn is not None
        return _CursorContext(self._conn)

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        assert self._conn is not None
        return _Cursor(self._conn.execute(sql, parameters))

    async def commit(self) -> None:
        assert self._conn is not None
        self._conn.commit()

    async def rollback(self) -> None:
        assert self._conn is not None
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        assert self._conn is not None
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#: The database holds webhook signing secrets as issued (HMAC needs them) and users' key
#: hashes: its file and SQLite's -wal/-shm beside it are for the Tasks service's user alone.
FILE_MODE = 0o600


def owner_only(path: str) -> None:
    """Creates the database file at ``path`` readable and writable by its owner alone
    (``FILE_MODE``; SQLite gives its -wal and -shm files the database file's mode), and takes
    group and other access away from an existing one and its -wal/-shm. ``:memory:`` and
    ``file:`` URIs are left to SQLite, and so is a file that cannot be created here (no such
    folder, no permission: SQLite's own error says so on connecting); a mode that cannot be
    changed (another owner) is logged and left."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE))
    except OSError:
        return
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, FILE_MODE)
        except FileNotFoundError:
            continue
        except PermissionError:
            log.warning("cannot make %s owner-only; it is readable by others", name)


def connector(path: str) -> Callable[[], Any]:
    owner_only(path)

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        return InlineConnection(connection)

    return connect
