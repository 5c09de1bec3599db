"""GET /api/v1/jobs at the HTTP edge: the query reaches ListJobs for the
caller only, the answer has the tasks' pagination block, bad queries are 400."""

from __future__ import annotations

import httpx
import pytest

from taskmesh.tasks.v1 import tasks_pb2
from tests.gateway.fakes import BOB_KEY, FakeTasks
from tests.support.gateway import assert_problem

ALICE, BOB = "user-alice", "user-bob"


async def test_the_caller_gets_their_jobs_newest_first_with_pagination(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    ids = [fake.add_job(ALICE) for _ in range(3)]
    fake.add_job(BOB)
    await fake.succeed(ids[0])
    response = await client.get("/api/v1/jobs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [job["jobId"] for job in body["jobs"]] == list(reversed(ids))
    assert body["jobs"][-1]["status"] == "succeeded"
    assert body["jobs"][-1]["task"]["title"]
    assert body["pagination"] == {
        "totalCount": 3, "skip": 0, "take": 10, "hasMore": False,
        "currentPage": 1, "totalPages": 1,
    }  # fmt: skip
    assert fake.last_list_jobs is not None
    assert fake.last_list_jobs.user_id == ALICE
    assert not fake.last_list_jobs.all_users


async def test_another_user_does_not_see_them(gateway, fake: FakeTasks) -> None:
    fake.add_job(ALICE)
    headers = {"Authorization": f"Bearer {BOB_KEY}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=20) as bob:
        body = (await bob.get("/api/v1/jobs")).json()
    assert body["jobs"] == []
    assert body["pagination"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("queued", tasks_pb2.JOB_STATE_QUEUED),
        ("running", tasks_pb2.JOB_STATE_RUNNING),
        ("succeeded", tasks_pb2.JOB_STATE_SUCCEEDED),
        ("failed", tasks_pb2.JOB_STATE_FAILED),
    ],
)
async def test_the_status_filter_and_page_reach_the_service(
    client: httpx.AsyncClient, fake: FakeTasks, status: str, state: int
) -> None:
    response = await client.get("/api/v1/jobs", params={"status": status, "skip": 4, "take": 2})
    assert response.status_code == 200, response.text
    assert fake.last_list_jobs is not None
    assert fake.last_list_jobs.state == state
    assert (fake.last_list_jobs.skip, fake.last_list_jobs.take) == (4, 2)
    assert response.json()["pagination"]["currentPage"] == 3


async def test_pages_of_a_long_list(client: httpx.AsyncClient, fake: FakeTasks) -> None:
    ids = [fake.add_job(ALICE) for _ in range(5)]
    first = (await client.get("/api/v1/jobs", params={"take": 2})).json()
    last = (await client.get("/api/v1/jobs", params={"take": 2, "skip": 4})).json()
    assert [j["jobId"] for j in first["jobs"]] == [ids[4], ids[3]]
    assert first["pagination"]["hasMore"] and first["pagination"]["totalPages"] == 3
    assert [j["jobId"] for j in last["jobs"]] == [ids[0]]
    assert not last["pagination"]["hasMore"]


@pytest.mark.parametrize(
    "params",
    [{"status": "done"}, {"take": "0"}, {"take": "101"}, {"skip": "-1"}, {"order": "x"}],
    ids=["unknown-status", "take-0", "take-101", "negative-skip", "unknown-parameter"],
)
async def test_a_bad_query_is_400_naming_the_parameter(
    client: httpx.AsyncClient, params: dict
) -> None:
    body = assert_problem(await client.get("/api/v1/jobs", params=params), 400)
    assert {e["field"] for e in body["errors"]} == set(params)


async def test_listing_needs_an_api_key(anon: httpx.AsyncClient) -> None:
    assert_problem(await anon.get("/api/v1/jobs"), 401)
