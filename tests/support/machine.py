"""The machine's shared services (RabbitMQ, PostgreSQL, Redis) and the ports a test
gives the processes it starts."""

from __future__ import annotations

import os
import random
import socket

import pytest

PG_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port`` (1 s to answer)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skips the test when ``name`` does not answer on ``host:port``; in CI (CI set)
    fails it instead, since .ci/run starts every service the suite needs."""
    if port_open(host, port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not answering on {host}:{port}")
    pytest.skip(f"{name} is not running on {host}:{port}")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port for a service a test starts. Drawn below the kernel's ephemeral
    range (32768+, Linux's default ip_local_port_range), so no outgoing connection
    can take it between this check and the service's bind; never the same one
    twice in a run."""
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


def unused_addr() -> str:
    """``127.0.0.1:PORT`` where nothing listens (a dependency that is down): a
    :func:`free_port`, so no other test's service is handed it meanwhile."""
    return f"127.0.0.1:{free_port()}"
