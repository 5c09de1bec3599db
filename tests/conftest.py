"""Fixtures shared by every test folder: the real databases and broker of
this machine. In CI (CI=true) a missing service fails the run; on a laptop
without one, the tests that need it are skipped."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _port_open(host, port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not answering on {host}:{port}")
    pytest.skip(f"{name} is not running on {host}:{port}")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port for a service a test starts. Drawn below the kernel's ephemeral
    range (32768+), so no outgoing connection can take it between this check
    and the service's bind; never the same one twice in a run."""
    while True:
        port = random.randrange(20_000, 32_000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """A fresh PostgreSQL database for this test run; dropped at the end."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    name = f"taskmesh_test_{uuid.uuid4().hex[:8]}"
    admin = PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql")

    async def _ddl(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def ddl(sql: str) -> None:
        # Its own thread and loop: this may be set up from inside a running test loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _ddl(sql)).result()

    ddl(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    ddl(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """Each storage test runs on SQLite and on the real PostgreSQL, from empty."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db"
        return
    url = request.getfixturevalue("postgres_database")
    await reset_schema(url)
    yield url


async def reset_schema(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    await engine.dispose()


@pytest.fixture
def empty_postgres(postgres_database: str) -> str:
    """The test PostgreSQL database, emptied, for tests that run processes on it."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, reset_schema(postgres_database)).result()
    return postgres_database


@pytest.fixture
def rabbitmq_url() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return RABBITMQ_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def queue_name() -> str:
    """A queue of the test's own, so runs never see each other's messages."""
    return f"test-jobs-{uuid.uuid4().hex[:10]}"
