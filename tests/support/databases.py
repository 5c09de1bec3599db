"""The test PostgreSQL database of a run, and emptying a database between tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.machine import PG_ADMIN_URL, require_service


async def reset_schema(url: str) -> None:
    """Drops every table of the database at ``url`` (SQLAlchemy URL)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    await engine.dispose()


def _in_own_loop(coro: Coroutine[Any, Any, None]) -> None:
    # Its own thread and loop: this may be called from inside a running test loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run; dropped at the end."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    name = f"taskmesh_test_{uuid.uuid4().hex[:8]}"
    admin = PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")

    async def ddl(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_own_loop(ddl(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _in_own_loop(ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each storage test runs on SQLite and on the real PostgreSQL, from empty."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db"
        return
    url = request.getfixturevalue("postgres_database")
    await reset_schema(url)
    yield url


@pytest.fixture
def empty_postgres(postgres_database: str) -> str:
    """The test PostgreSQL database, emptied, for tests that run processes on it."""
    _in_own_loop(reset_schema(postgres_database))
    return postgres_database
