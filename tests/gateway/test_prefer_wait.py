"""``Prefer: wait=N`` on POST /api/v1/tasks (SPEC §5): 201 with the job and its
task if a task was created in time, 200 with the job if it ended without one,
else 202 — whatever the way it ended and however long the wait."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from sanic.compat import Header

from gateway.headers import MAX_WAIT_S, preferred_wait
from taskmesh.tasks.v1 import tasks_pb2
from tests.gateway.fakes import FakeTasks

FAILURES = {
    "VAGUE_INPUT": tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT,
    "INVALID_OUTPUT": tasks_pb2.JOB_ERROR_TYPE_INVALID_OUTPUT,
    "RETRIES_EXHAUSTED": tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED,
    "TIMED_OUT": tasks_pb2.JOB_ERROR_TYPE_TIMED_OUT,
    "INTERNAL": tasks_pb2.JOB_ERROR_TYPE_INTERNAL,
}


async def _submit_and_end(
    client: httpx.AsyncClient, fake: FakeTasks, wait: str, end
) -> httpx.Response:  # type: ignore[no-untyped-def]
    request = asyncio.create_task(
        client.post(
            "/api/v1/tasks", json={"naturalLanguage": "Plan offsite"}, headers={"Prefer": wait}
        )
    )
    await fake.watching.wait()
    (job_id,) = fake.owners
    await fake.run(job_id)
    await end(job_id)
    return await request


@pytest.mark.parametrize("kind", FAILURES)
@pytest.mark.parametrize("wait", ["wait=20", "wait=30", "wait=600", 'respond-async, wait="25"'])
async def test_a_job_that_ends_without_a_task_is_200(
    client: httpx.AsyncClient, fake: FakeTasks, kind: str, wait: str
) -> None:
    response = await _submit_and_end(
        client, fake, wait, lambda job_id: fake.fail(job_id, FAILURES[kind])
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "failed" and job["error"]["type"] == kind
    assert "task" not in job
    assert response.headers["location"] == f"/api/v1/jobs/{job['jobId']}"
    assert "retry-after" not in response.headers
    assert response.headers["preference-applied"].startswith("wait=")


@pytest.mark.parametrize("wait", ["wait=20", "wait=30"])
async def test_a_job_that_creates_its_task_while_waiting_is_201(
    client: httpx.AsyncClient, fake: FakeTasks, wait: str
) -> None:
    response = await _submit_and_end(client, fake, wait, fake.succeed)
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "succeeded" and job["task"]["jobId"] == job["jobId"]
    assert "error" not in job


async def test_a_job_still_running_at_the_deadline_is_202(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    request = asyncio.create_task(
        client.post(
            "/api/v1/tasks", json={"naturalLanguage": "Plan offsite"}, headers={"Prefer": "wait=1"}
        )
    )
    await fake.watching.wait()
    (job_id,) = fake.owners
    await fake.run(job_id)
    response = await request
    assert response.status_code == 202
    # The state the wait last saw, not the stale "queued" of the submission.
    assert response.json()["status"] == "running"
    assert response.headers["retry-after"]


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        ("wait=5", 5),
        ('wait="7"', 7),
        ("respond-async, wait=12", 12),
        ("wait=31", MAX_WAIT_S),
        ("wait=" + "9" * 5000, MAX_WAIT_S),  # int() refuses over 4,300 digits: capped, not a 500
        ("wait=²", None),  # str.isdigit() accepts it, int() does not
        ("wait=١٢", None),  # other scripts' digits are no RFC 7240 value
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=1.5", None),
        ("wait=", None),
    ],
)
def test_a_wait_preference_is_read_as_ascii_seconds_or_ignored(
    prefer: str, seconds: int | None
) -> None:
    request = SimpleNamespace(headers=Header([("Prefer", prefer)]))
    assert preferred_wait(request) == seconds  # type: ignore[arg-type]
