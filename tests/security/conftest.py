"""Hostile-input and security tests: the in-process gateway in front of the fake
Tasks service (fast, for limits and fuzzing; tests/support/gateway.py), and the real
processes against the local RabbitMQ (keys, isolation, internal auth, leakage,
request ids)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.machine import RABBITMQ_URL, require_service
from tests.support.stack import Stack, stack_env, start_stack

#: Every process whose log lines must carry a request's id.
LOGGING_SERVICES = ("gateway", "tasks", "ai", "worker")

_FUZZ_CASES = pytest.StashKey[Counter[str]]()


# --- fuzz case accounting -------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FUZZ_CASES] = Counter()


@pytest.fixture(scope="session")
def fuzz_cases(pytestconfig: pytest.Config) -> Counter[str]:
    """Cases run per fuzz target, reported at the end of the run."""
    return pytestconfig.stash[_FUZZ_CASES]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    cases = config.stash.get(_FUZZ_CASES, Counter())
    if not cases:
        return
    terminalreporter.section("fuzz cases run")
    for target, count in sorted(cases.items()):
        terminalreporter.write_line(f"{target}: {count}")
    terminalreporter.write_line(f"total: {sum(cases.values())}")


# --- the real processes ---------------------------------------------------------------


def _start(root: Path) -> Iterator[Stack]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    env = {
        # Metrics listeners on, so the bind-address checks cover them too.
        **stack_env(root, RABBITMQ_URL, f"test-security-{uuid.uuid4().hex[:10]}", metrics=True),
        "LOG_LEVEL": "INFO",
    }
    # GATEWAY_HOST left unset on purpose: the gateway must listen on its default address.
    with start_stack(env, root / "logs", unset=("GATEWAY_HOST",)) as stack:
        yield stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One real stack shared by the tests that leave it as they found it."""
    yield from _start(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def fragile_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own, for tests that break a dependency."""
    yield from _start(tmp_path)
