"""Hostile-input and security tests: the in-process gateway in front of the fake
Tasks service (fast, for limits and fuzzing), and the real processes against
the local RabbitMQ (keys, isolation, internal auth, leakage, request ids)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from launcher.stack import LocalStack
from tests.conftest import RABBITMQ_URL, free_port, require_service

# The gateway against a fake TasksService on real grpc.aio servers.
from tests.gateway.conftest import (  # noqa: F401
    anon,
    backend,
    client,
    fake,
    gateway,
    make_gateway,
)
from tests.support.broker import delete_queues

SERVICES = ["llm-sim", "tasks", "ai", "worker", "gateway"]
#: Every process whose log lines must carry a request's id.
LOGGING_SERVICES = ("gateway", "tasks", "ai", "worker")
TERMINAL = ("succeeded", "failed")

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


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Polls ``predicate`` until it returns something truthy, or fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Stack:
    local: LocalStack
    url: str
    dev_key: str
    token: str
    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    db_path: Path

    @property
    def tasks_addr(self) -> str:
        return self.env["TASKS_GRPC_ADDR"]

    @property
    def ai_addr(self) -> str:
        return self.env["AI_GRPC_ADDR"]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``taskmesh ARGS…`` as an operator runs it, against this stack's database."""
        return subprocess.run(
            [sys.executable, "-m", "launcher", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def new_user(self, name: str | None = None) -> tuple[str, str]:
        """Creates a user through the CLI; returns its name and API key."""
        name = name or f"user-{uuid.uuid4().hex[:10]}"
        created = self.cli("users", "create", name)
        assert created.returncode == 0, created.stderr
        return name, created.stdout.strip()

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self, service: str) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))}


def wait_terminal(http: httpx.Client, location: str, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(location).json()
        return job if job.get("status") in TERMINAL else None

    result: dict[str, Any] = wait_until(done, timeout, f"{location} to finish")
    return result


def _start_stack(root: Path) -> Iterator[Stack]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    names = ("gateway", "tasks", "ai", "sim", "tasks_metrics", "ai_metrics", "worker_metrics")
    ports = {name: free_port() for name in names}
    queue = f"test-security-{uuid.uuid4().hex[:10]}"
    dev_key = "tm_" + secrets.token_urlsafe(32)
    token = secrets.token_urlsafe(24)
    db_path = root / "taskmesh.db"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "RABBITMQ_URL": RABBITMQ_URL,
        "JOB_QUEUE": queue,
        "TASKS_GRPC_ADDR": f"127.0.0.1:{ports['tasks']}",
        "AI_GRPC_ADDR": f"127.0.0.1:{ports['ai']}",
        "GATEWAY_PORT": str(ports["gateway"]),
        "LLM_SIM_PORT": str(ports["sim"]),
        "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['sim']}/v1",
        "OPENAI_API_KEY": "",
        "INTERNAL_AUTH_TOKEN": token,
        "TASKMESH_DEV_API_KEY": dev_key,
        # Metrics listeners on, so the bind-address checks cover them too.
        "TASKS_METRICS_PORT": str(ports["tasks_metrics"]),
        "AI_METRICS_PORT": str(ports["ai_metrics"]),
        "WORKER_METRICS_PORT": str(ports["worker_metrics"]),
        "SHUTDOWN_GRACE_S": "5",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    local = LocalStack(env, SERVICES, log_dir=root / "logs")
    # Left unset on purpose: the gateway must listen on its default address.
    local.env.pop("GATEWAY_HOST", None)
    local.start()
    url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        local.wait_ready(url, timeout=60)
        yield Stack(local, url, dev_key, token, env, ports, root / "logs", db_path)
    finally:
        codes = local.stop(15)
        asyncio.run(delete_queues(RABBITMQ_URL, queue))
    assert all(code == 0 for code in codes.values()), f"unclean exit: {codes}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One real stack shared by the tests that leave it as they found it."""
    yield from _start_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def fragile_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of the test's own, for tests that break a dependency."""
    yield from _start_stack(tmp_path)
