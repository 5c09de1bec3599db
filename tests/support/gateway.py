"""The real gateway in this process on an ephemeral port, in front of a fake
TasksService and a health-only AI server, both real grpc.aio servers (fixtures
``backend``, ``make_gateway``, ``gateway``, ``fake``, ``anon``, ``client``), and the
check of a problem+json answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx
import pytest
from grpc_health.v1 import health

from gateway import RunningGateway, start
from taskmesh.rpc.server import set_serving, start_server
from taskmesh.settings import Settings
from taskmesh.tasks.v1 import tasks_pb2_grpc
from tests.gateway.fakes import ALICE_KEY, FakeTasks

TOKEN = "internal-test-token"
TASKS_SERVICE = "taskmesh.tasks.v1.TasksService"


@dataclass
class Backend:
    tasks: FakeTasks
    tasks_addr: str
    tasks_health: health.aio.HealthServicer
    ai_addr: str
    ai_health: health.aio.HealthServicer


def gateway_settings(backend: Backend, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "gateway_host": "127.0.0.1",
        "gateway_port": 0,
        "tasks_grpc_addr": backend.tasks_addr,
        "ai_grpc_addr": backend.ai_addr,
        "internal_auth_token": TOKEN,
        "shutdown_grace_s": 5.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]  # pydantic validates the overrides' types


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    fake = FakeTasks()
    servers: list[grpc.aio.Server] = []

    def register(server: grpc.aio.Server) -> None:
        tasks_pb2_grpc.add_TasksServiceServicer_to_server(fake, server)

    tasks_server, tasks_health, tasks_port = await start_server(
        "127.0.0.1:0", TOKEN, [register], [TASKS_SERVICE]
    )
    servers.append(tasks_server)
    ai_server, ai_health, ai_port = await start_server("127.0.0.1:0", TOKEN, [], [])
    servers.append(ai_server)
    await set_serving(tasks_health, [TASKS_SERVICE], True)
    await set_serving(ai_health, [], True)
    try:
        yield Backend(
            fake, f"127.0.0.1:{tasks_port}", tasks_health, f"127.0.0.1:{ai_port}", ai_health
        )
    finally:
        for server in servers:
            await server.stop(None)


GatewayFactory = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def make_gateway(backend: Backend) -> AsyncIterator[GatewayFactory]:
    started: list[RunningGateway] = []

    async def make(**overrides: object) -> RunningGateway:
        gateway = await start(gateway_settings(backend, **overrides))
        started.append(gateway)
        return gateway

    try:
        yield make
    finally:
        for gateway in started:
            await gateway.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> RunningGateway:
    return await make_gateway()


@pytest.fixture
async def fake(backend: Backend) -> FakeTasks:
    return backend.tasks


@pytest.fixture
async def anon(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
        yield client


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=20) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://taskmesh.dev/problems/")
    if slug is not None:
        assert body["type"] == f"https://taskmesh.dev/problems/{slug}"
    assert body["title"] and body["detail"]
    assert body["requestId"] == response.headers["x-request-id"]
    return body
