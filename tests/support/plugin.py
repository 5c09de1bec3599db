"""The suite's pytest plugin (registered by tests/conftest.py): every fixture more
than one test folder uses.

- the machine's services: ``rabbitmq_url``, ``redis_url``, ``queue_name`` (a queue of
  the test's own), and the databases (tests/support/databases.py);
- the whole system as real processes: ``stack_factory`` / ``running_stack``
  (tests/support/stack.py);
- the in-process gateway before a fake Tasks service (tests/support/gateway.py);
- fault injection: ``broker_proxy``, a TCP proxy in front of RabbitMQ.

In CI (CI=true) a missing service fails the run; on a laptop without one, the tests
that need it are skipped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.broker import delete_queues
from tests.support.databases import (  # noqa: F401 - fixtures
    database_url,
    empty_postgres,
    postgres_database,
)
from tests.support.gateway import (  # noqa: F401 - fixtures
    anon,
    backend,
    client,
    fake,
    gateway,
    make_gateway,
)
from tests.support.machine import RABBITMQ_URL, REDIS_URL, require_service
from tests.support.stack import Stack, StackFactory, stack_env, start_stack
from tests.support.tcp_proxy import TcpProxy


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


@pytest.fixture
def stack_factory(tmp_path: Path, rabbitmq_url: str, queue_name: str) -> Iterator[StackFactory]:
    """Starts the real processes with extra settings: ``start(services=None,
    sim_args=None, **env) -> Stack``. Every stack started shares the test's queue; all
    are stopped at the end (a process a test killed may exit -9), then the queues
    are deleted."""
    with ExitStack() as started:

        def start(
            services: list[str] | None = None, sim_args: list[str] | None = None, **env: str
        ) -> Stack:
            full = {**stack_env(tmp_path, rabbitmq_url, queue_name), **env}
            return started.enter_context(
                start_stack(
                    full,
                    tmp_path / "logs",
                    services=services,
                    sim_args=sim_args,
                    clean_exit=lambda code: code in (0, -9),
                    own_queue=False,
                )
            )

        try:
            yield start
        finally:
            started.close()
            asyncio.run(delete_queues(rabbitmq_url, queue_name))


@pytest.fixture
def running_stack(stack_factory: StackFactory) -> Stack:
    return stack_factory()


class BrokerProxy(TcpProxy):
    url: str


@pytest.fixture
def broker_proxy(rabbitmq_url: str) -> Iterator[BrokerProxy]:
    """A proxy to the machine's RabbitMQ; ``broker_proxy.url`` is the AMQP URL through it."""
    parts = urlsplit(rabbitmq_url)
    proxy = BrokerProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    with proxy:
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        proxy.url = urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}"))
        yield proxy
