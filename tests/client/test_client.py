"""``taskmesh.client.TaskmeshClient`` against the real gateway (in front of the
fake TasksService): submit, wait, follow, list, errors as problem documents;
cancel against a scripted transport (its route belongs to the job lifecycle)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from gateway import RunningGateway
from taskmesh.client import ApiError, TaskmeshClient, WaitTimeout
from tests.gateway.fakes import ALICE_KEY, FakeTasks

TEXT = "Plan the team offsite next month with budget approval and venue booking"


def client_for(gateway: RunningGateway, key: str = ALICE_KEY) -> TaskmeshClient:
    # Polls as fast as allowed: the fake answers at once.
    return TaskmeshClient(gateway.url, key, sleep=lambda _: None)


async def test_submit_then_wait_returns_the_finished_job(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    with client_for(gateway) as tm:
        accepted = await asyncio.to_thread(tm.submit, TEXT)
        assert accepted["status"] == "queued"
        job_id = accepted["jobId"]
        waiting = asyncio.create_task(asyncio.to_thread(tm.wait, job_id, 30))
        await fake.run(job_id)
        task = await fake.succeed(job_id)
        job = await waiting
    assert job["status"] == "succeeded"
    assert job["task"]["id"] == task.task_id
    assert fake.texts == [TEXT]


async def test_submit_with_wait_gets_the_task_in_one_call(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    fake.complete_on_create = True
    with client_for(gateway) as tm:
        job = await asyncio.to_thread(tm.submit_and_wait, TEXT, timeout_s=10)
    assert job["status"] == "succeeded" and job["task"]["title"]
    assert fake.calls["GetJob"] == 0  # Prefer: wait answered; no polling


async def test_wait_gives_up_at_its_deadline_with_the_last_state(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    job_id = fake.add_job("user-alice")
    with client_for(gateway) as tm:
        with pytest.raises(WaitTimeout) as caught:
            await asyncio.to_thread(tm.wait, job_id, 0.5)
    assert caught.value.job["status"] == "queued"


async def test_events_follow_a_job_and_resume_after_the_last_seen(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    job_id = fake.add_job("user-alice")
    await fake.run(job_id)
    await fake.fail_vague(job_id)
    with client_for(gateway) as tm:
        events = await asyncio.to_thread(lambda: list(tm.events(job_id)))
        assert [e.status for e in events] == ["queued", "running", "failed"]
        assert events[-1].job["error"]["type"] == "VAGUE_INPUT"
        resumed = await asyncio.to_thread(lambda: list(tm.events(job_id, events[0].id)))
        assert [e.status for e in resumed] == ["running", "failed"]
        after_the_end = await asyncio.to_thread(lambda: list(tm.events(job_id, events[-1].id)))
        assert after_the_end == []


async def test_list_jobs_passes_the_filter(gateway: RunningGateway, fake: FakeTasks) -> None:
    queued = fake.add_job("user-alice")
    done = fake.add_job("user-alice")
    await fake.succeed(done)
    with client_for(gateway) as tm:
        page = await asyncio.to_thread(tm.list_jobs, "succeeded")
        everything = await asyncio.to_thread(tm.list_jobs)
    assert [j["jobId"] for j in page["jobs"]] == [done]
    assert [j["jobId"] for j in everything["jobs"]] == [done, queued]


async def test_errors_are_api_errors_with_the_problem_document(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    with client_for(gateway, key="not-a-key-of-anyone-here") as stranger:
        with pytest.raises(ApiError) as unauthenticated:
            await asyncio.to_thread(stranger.submit, TEXT)
    assert unauthenticated.value.status == 401
    assert unauthenticated.value.problem["requestId"]
    with client_for(gateway) as tm:
        with pytest.raises(ApiError) as invalid:
            await asyncio.to_thread(tm.submit, "   ")
        with pytest.raises(ApiError) as unknown:
            await asyncio.to_thread(tm.get_job, "0b7c6f2e-3c1d-4d1e-9a57-5d0f1c2b3a4e")
    assert invalid.value.status == 400
    assert invalid.value.problem["errors"][0]["field"] == "naturalLanguage"
    assert unknown.value.status == 404


def _scripted(status: int, body: dict) -> tuple[TaskmeshClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        content_type = "application/json" if status < 400 else "application/problem+json"
        return httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": content_type}
        )

    http = httpx.Client(base_url="http://taskmesh.test", transport=httpx.MockTransport(answer))
    return TaskmeshClient(api_key="key-alice-0001-test", http=http), seen


def test_cancel_posts_to_the_jobs_cancel_route() -> None:
    job_id = "0b7c6f2e-3c1d-4d1e-9a57-5d0f1c2b3a4e"
    tm, seen = _scripted(200, {"jobId": job_id, "status": "cancelled"})
    assert tm.cancel(job_id)["status"] == "cancelled"
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", f"/api/v1/jobs/{job_id}/cancel")
    assert request.headers["authorization"] == "Bearer key-alice-0001-test"


@pytest.mark.parametrize("status", [404, 409])
def test_cancel_refused_is_an_api_error(status: int) -> None:
    problem = {"type": "x", "title": "Conflict", "status": status, "detail": "Job is terminal."}
    tm, _ = _scripted(status, problem)
    with pytest.raises(ApiError) as caught:
        tm.cancel("0b7c6f2e-3c1d-4d1e-9a57-5d0f1c2b3a4e")
    assert caught.value.status == status and "terminal" in str(caught.value)


def test_the_api_url_taskmesh_up_prints_works_as_the_base_url() -> None:
    # `taskmesh up` prints "HTTP API http://host:port/api/v1"; the client adds /api/v1 itself.
    for url in (
        "http://127.0.0.1:8080/api/v1",
        "http://127.0.0.1:8080/API/v1/",
        "http://127.0.0.1:8080/",
    ):
        client = TaskmeshClient(api_key="k", base_url=url)
        assert str(client.http.base_url) == "http://127.0.0.1:8080"
        client.http.close()
