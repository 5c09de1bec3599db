"""Two users of one system: neither can see, list or follow the other's jobs
and tasks, and a foreign id reads exactly like one that does not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.checks import wait_terminal
from tests.support.gateway import assert_problem
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TEXT = "Plan the team offsite next month with budget approval and venue booking"


@dataclass
class Owned:
    owner_key: str
    other_key: str
    job_id: str
    task_id: str
    idempotency_key: str


@pytest.fixture(scope="module")
def owned(stack: Stack) -> Owned:
    """A succeeded job and its task, both belonging to the first of two users."""
    _, owner_key = stack.new_user()
    _, other_key = stack.new_user()
    idempotency_key = f"offsite-{uuid.uuid4().hex}"
    with stack.http(owner_key) as owner:
        accepted = owner.post(
            "/api/v1/tasks",
            json={"naturalLanguage": TEXT},
            headers={"Idempotency-Key": idempotency_key},
        )
        assert accepted.status_code == 202, accepted.text
        job = wait_terminal(owner, accepted.headers["Location"])
    assert job["status"] == "succeeded", job
    return Owned(owner_key, other_key, job["jobId"], job["task"]["id"], idempotency_key)


def _comparable(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = assert_problem(response, 404, "not-found")
    body.pop("requestId")
    return response.status_code, response.headers["content-type"], body


@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs/{job}", "/api/v1/jobs/{job}/events", "/api/v1/tasks/{task}"],
    ids=["job", "events", "task"],
)
def test_another_users_id_reads_like_an_unknown_one(stack: Stack, owned: Owned, path: str) -> None:
    with stack.http(owned.other_key) as other, stack.http(owned.owner_key) as owner:
        foreign = other.get(path.format(job=owned.job_id, task=owned.task_id))
        unknown = other.get(path.format(job=uuid.uuid4(), task=uuid.uuid4()))
        malformed = other.get(path.format(job="not-an-id", task="not-an-id"))
        own = owner.get(path.format(job=owned.job_id, task=owned.task_id))

    assert own.status_code == 200, own.text
    assert _comparable(foreign) == _comparable(unknown) == _comparable(malformed)
    assert owned.job_id not in foreign.text and owned.task_id not in foreign.text


def test_listings_hold_only_the_callers_tasks(stack: Stack, owned: Owned) -> None:
    with stack.http(owned.other_key) as other, stack.http(owned.owner_key) as owner:
        theirs = other.get("/api/v1/tasks", params={"take": 100}).json()
        filtered = other.get("/api/v1/tasks", params={"category": "work"}).json()
        mine = owner.get("/api/v1/tasks", params={"take": 100}).json()

    assert theirs["tasks"] == [] and theirs["pagination"]["totalCount"] == 0
    assert filtered["tasks"] == []
    assert [t["id"] for t in mine["tasks"]] == [owned.task_id]


def test_an_idempotency_key_belongs_to_its_user(stack: Stack, owned: Owned) -> None:
    with stack.http(owned.other_key) as other:
        replay = other.post(
            "/api/v1/tasks",
            json={"naturalLanguage": TEXT},
            headers={"Idempotency-Key": owned.idempotency_key},
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["jobId"] != owned.job_id
        wait_terminal(other, replay.headers["Location"])


def test_usage_is_counted_per_user(stack: Stack, owned: Owned) -> None:
    _, fresh_key = stack.new_user()
    with stack.http(fresh_key) as fresh, stack.http(owned.owner_key) as owner:
        untouched = fresh.get("/api/v1/usage").json()
        spent = owner.get("/api/v1/usage").json()

    assert untouched["used"] == 0 and untouched["reserved"] == 0
    assert untouched["remaining"] == untouched["limit"]
    assert spent["used"] > 0
