"""The real processes (tasks, ai, worker, gateway, llm-sim) against the local
RabbitMQ and a fresh SQLite database."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest

from taskmesh.queue.topology import JobTopology
from taskmesh.stack import LocalStack
from tests.conftest import free_port

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


async def _delete_queues(url: str, queue: str) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        await JobTopology(queue).delete(await connection.channel())


@pytest.fixture
def running_stack(tmp_path, rabbitmq_url, queue_name):
    ports = {k: free_port() for k in ("gateway", "tasks", "ai", "sim")}
    api_key = "tm_" + secrets.token_urlsafe(32)
    token = secrets.token_urlsafe(24)
    env = {
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
        "INTERNAL_AUTH_TOKEN": token,
        "TASKMESH_DEV_API_KEY": api_key,
        "TASKS_METRICS_PORT": "0",
        "AI_METRICS_PORT": "0",
        "WORKER_METRICS_PORT": "0",
        "SHUTDOWN_GRACE_S": "5",
        "LOG_FORMAT": "json",
    }
    stack = LocalStack(env, SERVICES, log_dir=tmp_path / "logs")
    stack.start()
    url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        stack.wait_ready(url, timeout=60)
        yield RunningStack(
            stack, url, api_key, token, env, env["TASKS_GRPC_ADDR"], env["AI_GRPC_ADDR"], tmp_path / "logs"
        )
    finally:
        codes = stack.stop(15)
        asyncio.run(_delete_queues(rabbitmq_url, queue_name))
    assert all(code == 0 for code in codes.values()), f"unclean exit: {codes}"
