"""Fault tests make the state they need instead of racing for it: the LLM
simulator holds calls at its gate until the test opens it, and a TCP proxy in
front of RabbitMQ drops or stalls the broker for the stack behind it only."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import stack_factory  # noqa: F401 - shared fixture
from tests.support.sim import sim_gate, sim_state  # noqa: F401 - used by the fault tests
from tests.support.tcp_proxy import TcpProxy


class BrokerProxy(TcpProxy):
    url: str


@pytest.fixture
def broker_proxy(rabbitmq_url: str):
    """A proxy to the machine's RabbitMQ; ``broker_proxy.url`` is the AMQP URL through it."""
    parts = urlsplit(rabbitmq_url)
    with BrokerProxy(parts.hostname or "127.0.0.1", parts.port or 5672) as proxy:
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        proxy.url = urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}"))
        yield proxy
