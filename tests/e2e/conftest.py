"""The real processes (tasks, ai, worker, gateway, llm-sim) against the local
RabbitMQ and a fresh SQLite database."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher.stack import LocalStack
from tests.conftest import free_port
from tests.support.broker import delete_queues

SERVICES = ["llm-sim", "tasks", "ai", "worker", "gateway"]


@dataclass
class RunningStack:
    stack: LocalStack
    url: str
    api_key: str
    token: str
    env: dict[str, str]
    tasks_addr: str
    ai_addr: str
    log_dir: Path


def stack_env(tmp_path: Path, rabbitmq_url: str, queue_name: str) -> dict[str, str]:
    ports = {k: free_port() for k in ("gateway", "tasks", "ai", "sim")}
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db",
        "RABBITMQ_URL": rabbitmq_url,
        "JOB_QUEUE": queue_name,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports["gateway"]),
        "TASKS_GRPC_ADDR": f"127.0.0.1:{ports['tasks']}",
        "AI_GRPC_ADDR": f"127.0.0.1:{ports['ai']}",
        "LLM_SIM_PORT": str(ports["sim"]),
        "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['sim']}/v1",
        "OPENAI_API_KEY": "",
        "INTERNAL_AUTH_TOKEN": secrets.token_urlsafe(24),
        "TASKMESH_DEV_API_KEY": "tm_" + secrets.token_urlsafe(32),
        "TASKS_METRICS_PORT": "0",
        "AI_METRICS_PORT": "0",
        "WORKER_METRICS_PORT": "0",
        "SHUTDOWN_GRACE_S": "5",
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def stack_factory(tmp_path, rabbitmq_url, queue_name):
    """Starts the real processes with extra settings: ``start(**env)``. Every
    stack started is stopped at the end and its queues deleted."""
    started: list[LocalStack] = []

    def start(
        services: list[str] | None = None, sim_args: list[str] | None = None, **env: str
    ) -> RunningStack:
        full = {**stack_env(tmp_path, rabbitmq_url, queue_name), **env}
        stack = LocalStack(full, services or SERVICES, log_dir=tmp_path / "logs", sim_args=sim_args)
        started.append(stack)
        stack.start()
        url = f"http://127.0.0.1:{full['GATEWAY_PORT']}"
        stack.wait_ready(url, timeout=60)
        return RunningStack(
            stack,
            url,
            full["TASKMESH_DEV_API_KEY"],
            full["INTERNAL_AUTH_TOKEN"],
            full,
            full["TASKS_GRPC_ADDR"],
            full["AI_GRPC_ADDR"],
            tmp_path / "logs",
        )

    try:
        yield start
    finally:
        codes = {}
        for stack in started:
            codes.update(stack.stop(15))
        asyncio.run(delete_queues(rabbitmq_url, queue_name))
    unclean = {name: code for name, code in codes.items() if code not in (0, -9)}
    assert not unclean, f"unclean exit: {unclean}"


@pytest.fixture
def running_stack(stack_factory) -> RunningStack:
    return stack_factory()
