"""GET /api/v1/jobs/{id} and its server-sent event stream."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gateway import RunningGateway
from tests.gateway.fakes import FakeTasks
from tests.support.gateway import assert_problem

ALICE = "user-alice"


async def read_events(response: httpx.Response) -> list[dict]:
    events, current = [], {}
    async for line in response.aiter_lines():
        if line == "":
            if current:
                events.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return events


async def test_queued_job_has_retry_after(client: httpx.AsyncClient, fake: FakeTasks) -> None:
    job_id = fake.add_job(ALICE)
    response = await client.get(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 200
    assert response.headers["retry-after"] == "1"
    assert response.json() == {
        "jobId": job_id,
        "status": "queued",
        "createdAt": "2025-01-15T12:00:00.000Z",
        "updatedAt": "2025-01-15T12:00:00.000Z",
        "attempts": 0,
    }


async def test_succeeded_job_carries_its_task_and_no_retry_after(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    await fake.run(job_id)
    task = await fake.succeed(job_id)

    response = await client.get(f"/api/v1/jobs/{job_id.upper()}")
    assert response.status_code == 200
    assert "retry-after" not in response.headers
    job = response.json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 1
    assert job["task"] == {
        "id": task.task_id,
        "title": task.title,
        "dueDate": "2025-02-14T12:00:00.000Z",
        "category": "work",
        "priority": {"level": "high", "score": 8, "reason": "Deadline next month."},
        "subtasks": [
            {"id": task.subtasks[1].subtask_id, "title": "Get Budget Approval", "order": 1},
            {"id": task.subtasks[0].subtask_id, "title": "Book Venue", "order": 2},
        ],
        "createdAt": "2025-01-15T12:00:00.000Z",
        "updatedAt": "2025-01-15T12:00:00.000Z",
        "jobId": job_id,
    }


async def test_someone_elses_job_is_404(client: httpx.AsyncClient, fake: FakeTasks) -> None:
    job_id = fake.add_job("user-bob")
    assert_problem(await client.get(f"/api/v1/jobs/{job_id}"), 404, "not-found")
    assert_problem(await client.get(f"/api/v1/jobs/{job_id}/events"), 404, "not-found")


async def test_event_stream_sends_every_state_with_sequence_ids(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    await fake.run(job_id)
    await fake.succeed(job_id)

    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        events = await read_events(response)

    assert [(e["id"], e["event"]) for e in events] == [
        ("1", "queued"),
        ("2", "running"),
        ("3", "succeeded"),
    ]
    assert json.loads(events[-1]["data"])["task"]["jobId"] == job_id


async def test_event_stream_follows_live_changes(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "id: 1"
        await fake.watching.wait()
        await fake.run(job_id)
        await fake.fail_vague(job_id)
        rest = [line async for line in lines]

    assert "id: 2" in rest and "event: running" in rest
    assert "id: 3" in rest and "event: failed" in rest


async def test_last_event_id_resumes_after_the_seen_event(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    await fake.run(job_id)
    await fake.succeed(job_id)

    async with client.stream(
        "GET", f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "1"}
    ) as response:
        events = await read_events(response)

    assert [e["id"] for e in events] == ["2", "3"]


@pytest.mark.parametrize(
    "foreign",
    # Header bytes are read as Latin-1: b"\xb2" is "²", a digit to str.isdigit().
    [b"9" * 5000, b"\xb2", "١٢".encode(), b"1.5", b"-1", b"abc", b"2, 3", b"9" * 20],
    ids=[
        "5000-digits",
        "superscript",
        "arabic-indic",
        "decimal",
        "negative",
        "word",
        "list",
        "20-digits",
    ],
)
async def test_a_foreign_last_event_id_replays_the_whole_stream(
    client: httpx.AsyncClient, fake: FakeTasks, foreign: bytes
) -> None:
    # An id this stream never sent is no position in it: the client gets every event, not a
    # 500 (int() refuses more than 4,300 digits and "²", which str.isdigit() accepts).
    job_id = fake.add_job(ALICE)
    await fake.succeed(job_id)
    async with client.stream(
        "GET", f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": foreign}
    ) as response:
        assert response.status_code == 200
        events = await read_events(response)
    assert [e["id"] for e in events] == ["1", "2"]


async def test_resuming_after_the_terminal_event_is_204(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    await fake.succeed(job_id)
    response = await client.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "2"})
    assert response.status_code == 204


async def test_event_stream_ends_when_the_gateway_shuts_down(
    client: httpx.AsyncClient, fake: FakeTasks, gateway: RunningGateway
) -> None:
    job_id = fake.add_job(ALICE)
    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "id: 1"
        await fake.watching.wait()
        closing = asyncio.create_task(gateway.close())
        rest = [line async for line in lines]
    await closing
    assert "id: 2" not in rest


async def test_cancel_answers_the_cancelled_job_then_409(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    job_id = fake.add_job(ALICE)
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert "retry-after" not in response.headers
    assert_problem(await client.post(f"/api/v1/jobs/{job_id}/cancel"), 409, "conflict")


async def test_cancel_someone_elses_or_a_malformed_job_is_404(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    theirs = fake.add_job("user-bob")
    assert_problem(await client.post(f"/api/v1/jobs/{theirs}/cancel"), 404, "not-found")
    assert_problem(await client.post("/api/v1/jobs/not-a-job/cancel"), 404, "not-found")
    assert fake.calls["CancelJob"] == 1  # a malformed id never reaches Tasks
