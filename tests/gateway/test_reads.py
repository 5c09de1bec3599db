"""GET /api/v1/tasks (pagination, query validation), /tasks/{id}, /usage."""

from __future__ import annotations

import httpx
import pytest

from taskmesh.tasks.v1 import tasks_pb2
from tests.gateway.fakes import FakeTasks, make_task
from tests.support.gateway import assert_problem

ALICE = "user-alice"


def seed(fake: FakeTasks, count: int) -> None:
    fake.tasks[ALICE] = [make_task(f"job-{n}", n) for n in range(count)]


@pytest.mark.parametrize(
    ("skip", "take", "expected"),
    [
        (0, 10, {"totalCount": 23, "skip": 0, "take": 10, "hasMore": True,
                 "currentPage": 1, "totalPages": 3}),
        (10, 10, {"totalCount": 23, "skip": 10, "take": 10, "hasMore": True,
                  "currentPage": 2, "totalPages": 3}),
        (20, 10, {"totalCount": 23, "skip": 20, "take": 10, "hasMore": False,
                  "currentPage": 3, "totalPages": 3}),
        (5, 100, {"totalCount": 23, "skip": 5, "take": 100, "hasMore": False,
                  "currentPage": 1, "totalPages": 1}),
        (30, 10, {"totalCount": 23, "skip": 30, "take": 10, "hasMore": False,
                  "currentPage": 4, "totalPages": 3}),
    ],
)  # fmt: skip
async def test_pagination_block(
    client: httpx.AsyncClient, fake: FakeTasks, skip: int, take: int, expected: dict
) -> None:
    seed(fake, 23)
    response = await client.get("/api/v1/tasks", params={"skip": skip, "take": take})
    assert response.status_code == 200
    body = response.json()
    assert body["pagination"] == expected
    assert len(body["tasks"]) == max(0, min(take, 23 - skip))


async def test_no_tasks_is_an_empty_first_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/tasks")).json()
    assert body == {
        "tasks": [],
        "pagination": {"totalCount": 0, "skip": 0, "take": 10, "hasMore": False,
                       "currentPage": 1, "totalPages": 0},
    }  # fmt: skip


async def test_query_is_passed_through_with_defaults(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    await client.get("/api/v1/tasks")
    assert fake.last_list is not None
    assert fake.last_list.user_id == ALICE
    assert (fake.last_list.skip, fake.last_list.take) == (0, 10)
    assert fake.last_list.order_by == tasks_pb2.TASK_ORDER_BY_CREATE_TIME
    assert fake.last_list.order_direction == tasks_pb2.ORDER_DIRECTION_DESC

    await client.get(
        "/api/v1/tasks",
        params={"orderBy": "priorityScore", "orderDirection": "asc", "category": "work",
                "priorityLevel": "high"},
    )  # fmt: skip
    assert fake.last_list.order_by == tasks_pb2.TASK_ORDER_BY_PRIORITY_SCORE
    assert fake.last_list.order_direction == tasks_pb2.ORDER_DIRECTION_ASC
    assert (fake.last_list.category, fake.last_list.priority_level) == ("work", "high")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"take": "0"}, "take"),
        ({"take": "101"}, "take"),
        ({"take": "ten"}, "take"),
        ({"skip": "-1"}, "skip"),
        ({"orderBy": "title"}, "orderBy"),
        ({"orderDirection": "up"}, "orderDirection"),
        ({"order_by": "dueDate"}, "order_by"),
        ({"priorityLevel": "urgent"}, "priorityLevel"),
        ({"priorityLevel": "High"}, "priorityLevel"),
        ({"priorityLevel": ""}, "priorityLevel"),
        ({"category": "shopping"}, "category"),
        ({"category": ""}, "category"),
        ([("take", "5"), ("take", "6")], "take"),
    ],
)
async def test_bad_query_is_400_naming_the_parameter(
    client: httpx.AsyncClient, fake: FakeTasks, params: object, field: str
) -> None:
    response = await client.get("/api/v1/tasks", params=params)
    body = assert_problem(response, 400, "validation")
    assert [e["field"] for e in body["errors"]] == [field]
    assert fake.calls["ListTasks"] == 0


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        ("/api/v1/tasks", {"take": "0"}, "take", "must be at least 1"),
        ("/api/v1/tasks", {"take": "101"}, "take", "must be at most 100"),
        ("/api/v1/tasks", {"skip": "-1"}, "skip", "must be at least 0"),
        ("/api/v1/tasks", {"take": "ten"}, "take", "must be an integer"),
        (
            "/api/v1/tasks",
            {"orderBy": "title"},
            "orderBy",
            "must be one of 'dueDate', 'priorityScore' or 'createdAt'",
        ),
        (
            "/api/v1/tasks",
            {"priorityLevel": "urgent"},
            "priorityLevel",
            "must be one of 'low', 'medium', 'high' or 'critical'",
        ),
        (
            "/api/v1/tasks",
            {"category": "shopping"},
            "category",
            "must be one of 'work', 'personal', 'health', 'finance' or 'errand'",
        ),
        (
            "/api/v1/jobs",
            {"status": "bogus"},
            "status",
            "must be one of 'queued', 'running', 'succeeded', 'failed' or 'cancelled'",
        ),
        ("/api/v1/jobs", {"take": "0"}, "take", "must be at least 1"),
    ],
)
async def test_query_errors_are_worded_by_the_api_not_the_validation_library(
    client: httpx.AsyncClient, path: str, params: dict[str, str], field: str, message: str
) -> None:
    response = await client.get(path, params=params)
    body = assert_problem(response, 400, "validation")
    assert body["errors"] == [{"field": field, "message": message}]
    assert body["detail"] == f"Invalid query parameters: {field}: {message}."
    assert "Input should" not in response.text and "Value error" not in response.text


async def test_get_task(client: httpx.AsyncClient, fake: FakeTasks) -> None:
    seed(fake, 2)
    task = fake.tasks[ALICE][1]
    response = await client.get(f"/api/v1/tasks/{task.task_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == task.task_id
    assert body["dueDate"] is None
    assert body["createdAt"] == "2025-01-15T12:01:00.000Z"


async def test_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tasks/6f1c1f7e-1c1a-4c1e-9a1e-0c1e1c1e1c1e")
    assert_problem(response, 404, "not-found")


async def test_usage(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/usage")
    assert response.status_code == 200
    assert response.json() == {
        "windowStart": "2025-01-15T12:00:00.000Z",
        "windowEnd": "2025-01-16T12:00:00.000Z",
        "limit": 100000,
        "used": 2400,
        "reserved": 2500,
        "remaining": 95100,
    }


async def test_task_without_subtasks_shows_null_not_an_empty_list(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    """SPEC §10: an atomic task (or one whose subtasks call failed) has ``subtasks: null``."""
    seed(fake, 2)
    atomic = fake.tasks[ALICE][0]
    del atomic.subtasks[:]
    single = await client.get(f"/api/v1/tasks/{atomic.task_id}")
    assert single.status_code == 200
    assert "subtasks" in single.json() and single.json()["subtasks"] is None
    listed = await client.get("/api/v1/tasks")
    by_id = {t["id"]: t for t in listed.json()["tasks"]}
    assert by_id[atomic.task_id]["subtasks"] is None
    other = fake.tasks[ALICE][1]
    assert [s["title"] for s in by_id[other.task_id]["subtasks"]] == [
        "Get Budget Approval",
        "Book Venue",
    ]
