"""The whole system as real processes (llm-sim, tasks, ai, worker, gateway) on a
SQLite database of the test's own and a queue of its own on the machine's RabbitMQ:
one environment builder, one stack type, one way to start and stop it."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from launcher.stack import LocalStack
from tests.support.broker import delete_queues
from tests.support.machine import free_port

SERVICES = ["llm-sim", "tasks", "ai", "worker", "gateway"]
#: Metrics listener variables, by service (each port 0: off).
METRICS_PORTS = {
    "tasks": "TASKS_METRICS_PORT",
    "ai": "AI_METRICS_PORT",
    "worker": "WORKER_METRICS_PORT",
}


def stack_env(
    root: Path, rabbitmq_url: str, queue: str, *, metrics: bool = False
) -> dict[str, str]:
    """The variables of a stack under ``root`` (its SQLite file) on job queue ``queue``:
    fresh ports, a fresh internal token and dev API key, JSON logs. ``metrics``: the
    Tasks, AI and worker Prometheus listeners on (off otherwise; the gateway always
    serves ``/metrics``)."""
    ports = {k: free_port() for k in ("gateway", "tasks", "ai", "sim")}
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{root}/taskmesh.db",
        "RABBITMQ_URL": rabbitmq_url,
        "JOB_QUEUE": queue,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports["gateway"]),
        "TASKS_GRPC_ADDR": f"127.0.0.1:{ports['tasks']}",
        "AI_GRPC_ADDR": f"127.0.0.1:{ports['ai']}",
        "LLM_SIM_PORT": str(ports["sim"]),
        "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['sim']}/v1",
        "OPENAI_API_KEY": "",
        "INTERNAL_AUTH_TOKEN": secrets.token_urlsafe(24),
        "TASKMESH_DEV_API_KEY": "tm_" + secrets.token_urlsafe(32),
        "SHUTDOWN_GRACE_S": "5",
        "LOG_FORMAT": "json",
    }
    for variable in METRICS_PORTS.values():
        env[variable] = str(free_port()) if metrics else "0"
    return env


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@dataclass
class Stack:
    """A running system. ``stack``: its processes (None for one a test started
    itself, such as the replicas); ``url``: the gateway's base URL; ``env``: the
    variables every process got; ``log_dir``: one ``<service>.log`` per process."""

    stack: LocalStack | None
    url: str
    env: dict[str, str]
    log_dir: Path

    @property
    def api_key(self) -> str:
        """The dev user's API key (TASKMESH_DEV_API_KEY)."""
        return self.env["TASKMESH_DEV_API_KEY"]

    @property
    def token(self) -> str:
        """The internal token between the services (INTERNAL_AUTH_TOKEN)."""
        return self.env["INTERNAL_AUTH_TOKEN"]

    @property
    def tasks_addr(self) -> str:
        return self.env["TASKS_GRPC_ADDR"]

    @property
    def ai_addr(self) -> str:
        return self.env["AI_GRPC_ADDR"]

    @property
    def db_path(self) -> Path:
        """The SQLite file of the Tasks service."""
        return Path(self.env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))

    @property
    def ports(self) -> dict[str, int]:
        """Every port the stack listens on, by listener (metrics ones only when on)."""
        ports = {
            "gateway": int(self.env["GATEWAY_PORT"]),
            "tasks": _port(self.tasks_addr),
            "ai": _port(self.ai_addr),
            "sim": int(self.env["LLM_SIM_PORT"]),
        }
        for service, variable in METRICS_PORTS.items():
            if int(self.env.get(variable) or 0):
                ports[f"{service}_metrics"] = int(self.env[variable])
        return ports

    @property
    def metrics_urls(self) -> dict[str, str]:
        """The Prometheus endpoint of each service whose metrics listener is on."""
        ports = self.ports
        return {
            "gateway": f"{self.url}/metrics",
            **{
                service: f"http://127.0.0.1:{ports[f'{service}_metrics']}/metrics"
                for service in METRICS_PORTS
                if f"{service}_metrics" in ports
            },
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``taskmesh ARGS…`` as an operator runs it, with this stack's variables."""
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

    def http(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        """A client of the gateway, authenticated with ``key`` when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def metric(self, service: str, name: str, **labels: str) -> float:
        """The sum of ``service``'s samples of ``name`` (full sample name, e.g.
        ``taskmesh_jobs_retried_total``) whose labels include ``labels``; 0 before the
        first event. Its metrics listener must be on (``stack_env(metrics=True)`` or
        its ``*_METRICS_PORT``)."""
        text = httpx.get(self.metrics_urls[service], timeout=5).raise_for_status().text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def log_text(self, service: str) -> str:
        path = self.log_dir / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log"))}


@contextmanager
def start_stack(
    env: dict[str, str],
    log_dir: Path,
    *,
    services: list[str] | None = None,
    sim_args: list[str] | None = None,
    unset: tuple[str, ...] = (),
    clean_exit: Callable[[int], bool] = lambda code: code == 0,
    own_queue: bool = True,
) -> Iterator[Stack]:
    """Starts ``services`` (all by default) with ``env``, waits (60 s) until the gateway
    is ready and yields the stack. ``unset``: variables the processes must not get,
    not even from this process's environment. At exit stops every process (15 s grace),
    deletes the stack's queues from the broker unless other stacks share them
    (``own_queue`` False: the caller deletes them after the last one) and fails if an
    exit code is not ``clean_exit``."""
    env = {k: v for k, v in env.items() if k not in unset}
    local = LocalStack(env, services or SERVICES, log_dir=log_dir, sim_args=sim_args)
    for variable in unset:
        local.env.pop(variable, None)
    url = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
    codes: dict[str, int] = {}
    try:
        local.start()
        local.wait_ready(url, timeout=60)
        yield Stack(local, url, env, log_dir)
    finally:
        codes = local.stop(15)
        if own_queue:
            asyncio.run(delete_queues(env["RABBITMQ_URL"], env["JOB_QUEUE"]))
    unclean = {name: code for name, code in codes.items() if not clean_exit(code)}
    assert not unclean, f"unclean exit: {unclean}"


StackFactory = Callable[..., Stack]
