"""Start, serve, stop: in-flight requests finish within the grace period."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from gateway import RunningGateway, run
from tests.gateway.fakes import ALICE_KEY, FakeTasks
from tests.support.gateway import Backend, GatewayFactory, gateway_settings
from tests.support.machine import unused_addr

AUTH = {"Authorization": f"Bearer {ALICE_KEY}"}
WAIT = {**AUTH, "Prefer": "wait=20"}


async def test_run_serves_until_stop_is_set(backend: Backend) -> None:
    port = int(unused_addr().rsplit(":", 1)[1])
    stop, ready = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(run(gateway_settings(backend, gateway_port=port), stop, ready))
    await ready.wait()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
    stop.set()
    await serving

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")


async def test_close_lets_an_in_flight_request_finish(
    make_gateway: GatewayFactory, fake: FakeTasks
) -> None:
    gateway = await make_gateway()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        request = asyncio.create_task(
            http.post("/api/v1/tasks", json={"naturalLanguage": "Plan offsite"}, headers=WAIT)
        )
        await fake.watching.wait()
        closing = asyncio.create_task(gateway.close())
        (job_id,) = fake.owners
        await fake.run(job_id)
        await fake.succeed(job_id)

        response = await request
        await closing
    assert response.status_code == 201

    async with httpx.AsyncClient(base_url=gateway.url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")


async def test_close_aborts_what_outlives_the_grace_period(
    make_gateway: GatewayFactory, fake: FakeTasks
) -> None:
    gateway = await make_gateway(shutdown_grace_s=0.2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        request = asyncio.create_task(
            http.post("/api/v1/tasks", json={"naturalLanguage": "Plan offsite"}, headers=WAIT)
        )
        await fake.watching.wait()
        await gateway.close()
        with pytest.raises(httpx.TransportError):
            await request


async def test_one_access_log_line_per_request(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await client.get("/api/v1/usage", headers={"X-Request-Id": "client-req-0003"})
    (record,) = [r for r in caplog.records if r.name == "gateway.access"]
    assert record.__dict__["route"] == "/api/v1/usage"
    assert record.__dict__["method"] == "GET"
    assert record.__dict__["status"] == 200
    assert record.__dict__["request_id"] == "client-req-0003"
    assert record.__dict__["seconds"] >= 0


async def test_a_taken_port_fails_start_and_leaks_nothing(
    make_gateway: GatewayFactory, gateway: RunningGateway
) -> None:
    with pytest.raises(OSError):
        await make_gateway(gateway_port=gateway.port)
