"""ListJobs through a real in-process grpc.aio server on SQLite and PostgreSQL:
a user sees only their own jobs, newest first, filtered by state and paged;
operators list everyone's only by asking for it explicitly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.users import UserService
from services.tasks.storage.repository import Store
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.rpc import server
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.tasks.conftest import DRAFT, Clock, FakeDispatcher

TOKEN = "test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
#: A well-formed user id no user has.
SOMEONE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def listing(database_url: str):
    """Alice has 7 jobs (created a minute apart: 3 succeeded, 2 failed, 2
    queued), Bob 2; yields the stub, the users and Alice's job ids oldest first."""
    store = Store(database_url)
    await store.open()
    users = UserService(store)
    alice, _ = await users.create("alice")
    bob, _ = await users.create("bob")
    clock = Clock(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
    policy = JobPolicy(BudgetPolicy(86_400, 100 * 2500, 2500), 900)
    jobs = JobService(store, FakeDispatcher(), policy, clock=clock)
    alice_jobs: list[str] = []
    for n in range(7):
        clock.now += timedelta(minutes=1)
        job = await jobs.create(alice.id, f"Alice job {n}")
        alice_jobs.append(job.id)
        if n in (0, 2, 4):
            await jobs.complete(job.id, DRAFT, 1000)
        elif n in (1, 5):
            await jobs.complete(job.id, m.JobError(m.ErrorType.VAGUE_INPUT, "Vague."), 10)
    for n in range(2):
        clock.now += timedelta(minutes=1)
        await jobs.create(bob.id, f"Bob job {n}")
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(TasksServicer(jobs, users))], [SERVICE_NAME]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield tasks_pb2_grpc.TasksServiceStub(channel), alice.id, bob.id, alice_jobs
    await channel.close()
    await grpc_server.stop(None)
    await store.close()


async def _list(stub, **fields) -> tasks_pb2.ListJobsResponse:  # type: ignore[no-untyped-def]
    return await stub.ListJobs(tasks_pb2.ListJobsRequest(**fields), metadata=AUTH, timeout=5)


async def test_a_user_lists_only_their_own_jobs_newest_first(listing) -> None:
    stub, alice, bob, alice_jobs = listing
    mine = await _list(stub, user_id=alice, take=100)
    assert mine.total_count == 7
    assert [j.job_id for j in mine.jobs] == list(reversed(alice_jobs))
    assert {j.user_id for j in mine.jobs} == {alice}
    theirs = await _list(stub, user_id=bob)
    assert theirs.total_count == 2
    assert not {j.job_id for j in theirs.jobs} & set(alice_jobs)


async def test_succeeded_jobs_carry_their_task_and_failed_ones_their_error(listing) -> None:
    stub, alice, _, _ = listing
    listed = await _list(stub, user_id=alice, take=100)
    for job in listed.jobs:
        if job.state == tasks_pb2.JOB_STATE_SUCCEEDED:
            assert job.task.title == DRAFT.title
            assert [s.title for s in job.task.subtasks] == DRAFT.subtasks
        else:
            assert not job.HasField("task")
        assert job.HasField("error") == (job.state == tasks_pb2.JOB_STATE_FAILED)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (tasks_pb2.JOB_STATE_SUCCEEDED, [4, 2, 0]),
        (tasks_pb2.JOB_STATE_FAILED, [5, 1]),
        (tasks_pb2.JOB_STATE_QUEUED, [6, 3]),
        (tasks_pb2.JOB_STATE_RUNNING, []),
    ],
)
async def test_the_state_filter_counts_and_lists_only_that_state(
    listing, state: int, expected: list[int]
) -> None:
    stub, alice, _, alice_jobs = listing
    listed = await _list(stub, user_id=alice, state=state)
    assert listed.total_count == len(expected)
    assert [j.job_id for j in listed.jobs] == [alice_jobs[n] for n in expected]


async def test_pages_cover_every_job_once_in_order(listing) -> None:
    stub, alice, _, alice_jobs = listing
    seen: list[str] = []
    for skip in range(0, 8, 3):
        page = await _list(stub, user_id=alice, skip=skip, take=3)
        assert page.total_count == 7
        seen.extend(j.job_id for j in page.jobs)
    assert seen == list(reversed(alice_jobs))
    past_the_end = await _list(stub, user_id=alice, skip=50, take=3)
    assert (list(past_the_end.jobs), past_the_end.total_count) == ([], 7)


async def test_operators_list_every_users_jobs_only_when_they_ask(listing) -> None:
    stub, alice, bob, _ = listing
    everyone = await _list(stub, all_users=True, take=100)
    assert everyone.total_count == 9
    assert {j.user_id for j in everyone.jobs} == {alice, bob}
    times = [j.create_time.ToDatetime() for j in everyone.jobs]
    assert times == sorted(times, reverse=True)
    queued = await _list(stub, all_users=True, state=tasks_pb2.JOB_STATE_QUEUED)
    assert queued.total_count == 4


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        # Neither a user nor all users: never "everyone" by omission.
        ({}, "user_id is required unless all_users"),
        ({"user_id": SOMEONE, "all_users": True}, "not both"),
        # Every user id is a UUID: anything else names nobody, and is no empty list.
        ({"user_id": "someone"}, "user_id must be a UUID"),
        ({"user_id": SOMEONE, "take": 101}, "take"),
        ({"user_id": SOMEONE, "skip": -1}, "skip"),
        ({"user_id": SOMEONE, "state": 99}, "state"),
    ],
    ids=["no-user", "both", "not-a-uuid", "take-too-big", "negative-skip", "unknown-state"],
)
async def test_a_bad_request_is_invalid_argument_saying_what_is_wrong(
    listing, fields: dict, says: str
) -> None:
    stub, _, _, _ = listing
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list(stub, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (caught.value.details() or "")


async def test_listing_needs_the_internal_token(listing) -> None:
    stub, alice, _, _ = listing
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListJobs(tasks_pb2.ListJobsRequest(user_id=alice), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
