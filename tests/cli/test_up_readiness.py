"""What ``taskmesh up`` says about readiness (SPEC §3): ready once /readyz
answers 200, otherwise which dependency is not serving, or that the gateway
does not answer at all."""

from __future__ import annotations

import asyncio

from gateway import RunningGateway
from launcher.up import readiness
from taskmesh.rpc.server import set_serving
from tests.support.gateway import TASKS_SERVICE, Backend
from tests.support.machine import free_port


async def test_ready_then_names_what_is_not_serving(
    gateway: RunningGateway, backend: Backend
) -> None:
    assert await asyncio.to_thread(readiness, gateway.url) == (True, "")

    await set_serving(backend.ai_health, [], False)
    assert await asyncio.to_thread(readiness, gateway.url) == (False, "ai not serving")

    await set_serving(backend.tasks_health, [TASKS_SERVICE], False)
    assert await asyncio.to_thread(readiness, gateway.url) == (False, "tasks, ai not serving")


def test_a_gateway_that_does_not_answer_is_named_by_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert readiness(url) == (False, f"the gateway does not answer at {url}")
