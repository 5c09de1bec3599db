"""POST /api/v1/tasks batched: submissions made while a CreateTasks call is in flight
leave together in the next one as soon as it returns; a lone submission leaves at
once (no timer); each client gets its own answer, as if it had been sent alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from gateway import RunningGateway
from taskmesh import errors
from tests.gateway.fakes import ALICE_KEY, BOB_KEY, FakeTasks
from tests.support.gateway import assert_problem

pytestmark = pytest.mark.timeout(30)


async def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Waits for ``condition`` (checked every 10 ms), failing after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def post(
    anon: httpx.AsyncClient, key: str, text: str, idempotency_key: str | None = None
) -> asyncio.Task[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return asyncio.create_task(
        anon.post("/api/v1/tasks", json={"naturalLanguage": text}, headers=headers)
    )


async def test_a_lone_submission_leaves_at_once_and_the_ones_behind_it_leave_together(
    anon: httpx.AsyncClient, fake: FakeTasks, gateway: RunningGateway
) -> None:
    fake.create_gate = asyncio.Event()
    first = post(anon, ALICE_KEY, "Pay rent tomorrow")
    # Alone, it is in Tasks while nothing else is waiting: it did not wait for company.
    await fake.batch_arrived.wait()
    assert fake.batches == [1]

    behind = [post(anon, key, f"Errand {n}") for n, key in enumerate([ALICE_KEY, BOB_KEY] * 2)]
    await until(lambda: gateway.app.ctx.tasks.waiting_submissions == 4, "four waiting")
    assert fake.batches == [1]  # they wait for the call in flight, not for a timer
    fake.create_gate.set()
    responses = [await first, *[await task for task in behind]]

    assert [r.status_code for r in responses] == [202] * 5
    assert fake.batches == [1, 4]
    assert len({r.json()["jobId"] for r in responses}) == 5
    # Each key was checked (and its rate token taken) once, inside the batch.
    assert fake.calls["Authenticate"] == 5


async def test_each_submission_of_a_batch_gets_the_answer_it_would_get_alone(
    anon: httpx.AsyncClient, fake: FakeTasks, gateway: RunningGateway
) -> None:
    taken = await post(anon, ALICE_KEY, "Buy milk", "key-milk")
    assert taken.status_code == 202
    fake.create_gate = asyncio.Event()
    fake.batch_arrived.clear()
    first = post(anon, BOB_KEY, "Water the plants")
    await fake.batch_arrived.wait()
    behind = [
        post(anon, ALICE_KEY, "Book the dentist"),
        post(anon, "key-nobody-has-0000", "Book the dentist"),
        post(anon, ALICE_KEY, "Buy bread", "key-milk"),
        post(anon, ALICE_KEY, "Buy milk", "key-milk"),
    ]
    await until(lambda: gateway.app.ctx.tasks.waiting_submissions == 4, "four waiting")
    fake.create_gate.set()
    accepted, other, unknown, conflict, replay = [await first, *[await t for t in behind]]

    assert fake.batches[-2:] == [1, 4]
    assert accepted.status_code == other.status_code == 202
    assert_problem(unknown, 401)
    assert_problem(conflict, 422)
    assert replay.status_code == 202
    assert replay.json()["jobId"] == taken.json()["jobId"]


async def test_a_failed_batch_call_fails_each_of_its_submissions(
    anon: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.failures["CreateTasks"] = errors.Unavailable("down")
    fake.create_gate = None
    response = await post(anon, ALICE_KEY, "Pay rent tomorrow")
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
