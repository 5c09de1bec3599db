"""An API key carried in a call's metadata (taskmesh.rpc.caller) through a real
TasksService: checked by the same rule as Authenticate, before the handler, with
the rate token taken, revocation effective on the next call."""

from __future__ import annotations

import grpc
import pytest

from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.users import UserService
from services.tasks.storage.ratelimit import LocalTokenBucket
from services.tasks.storage.repository import Store
from services.tasks.transport.caller import caller_interceptor
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.rpc import server
from taskmesh.rpc.caller import API_KEY_KEY, user_of
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.tasks.conftest import FakeDispatcher

TOKEN = "test-token"
AUTH = ("authorization", f"Bearer {TOKEN}")
#: Requests a user may make before their bucket is empty (refill is negligible here).
BUCKET = 3


@pytest.fixture
async def tasks(tmp_path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await store.open()
    users = UserService(store, LocalTokenBucket(capacity=BUCKET, refill_per_s=0.001))
    alice, alice_key = await users.create("alice")
    await users.create("bob")
    jobs = JobService(store, FakeDispatcher(), JobPolicy(BudgetPolicy(86_400, 10_000, 2500), 900))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0",
        TOKEN,
        [registrar(TasksServicer(jobs, users))],
        [SERVICE_NAME],
        interceptors=[caller_interceptor(users)],
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield tasks_pb2_grpc.TasksServiceStub(channel), users, alice, alice_key
    await channel.close()
    await grpc_server.stop(None)
    await store.close()


def as_key(key: str) -> tuple[tuple[str, str], ...]:
    return (AUTH, (API_KEY_KEY, key))


async def test_the_key_names_the_user_and_the_answer_says_who(tasks) -> None:
    stub, _, alice, key = tasks
    call = stub.CreateTask(
        tasks_pb2.CreateTaskRequest(natural_language="Book dentist"),
        metadata=as_key(key),
        timeout=5,
    )
    created = await call
    assert user_of(await call.initial_metadata()) == (alice.id, alice.name)
    mine = await stub.GetJob(
        tasks_pb2.GetJobRequest(user_id=alice.id, job_id=created.job.job_id),
        metadata=(AUTH,),
        timeout=5,
    )
    assert mine.job.job_id == created.job.job_id


async def test_the_key_overrides_a_named_user_and_every_user_scope(tasks) -> None:
    stub, users, alice, key = tasks
    carol_key = (await users.create("carol"))[1]
    await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(natural_language="Call the bank"),
        metadata=as_key(carol_key),
        timeout=5,
    )
    listed = await stub.ListJobs(
        tasks_pb2.ListJobsRequest(all_users=True), metadata=as_key(key), timeout=5
    )
    assert listed.total_count == 0  # carol's job is not alice's to see


async def test_a_revoked_key_is_refused_on_the_next_call(tasks) -> None:
    stub, users, _, key = tasks
    await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=as_key(key), timeout=5)
    await users.revoke(key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=as_key(key), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_each_call_with_the_key_takes_a_rate_token(tasks) -> None:
    stub, _, _, key = tasks
    for _ in range(BUCKET):
        await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=as_key(key), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=as_key(key), timeout=5)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_an_unknown_key_never_reaches_the_handler(tasks) -> None:
    stub, _, alice, _ = tasks
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateTask(
            tasks_pb2.CreateTaskRequest(user_id=alice.id, natural_language="Sneak in"),
            metadata=as_key("tm_" + "Z" * 43),
            timeout=5,
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    listed = await stub.ListJobs(
        tasks_pb2.ListJobsRequest(user_id=alice.id), metadata=(AUTH,), timeout=5
    )
    assert listed.total_count == 0


async def test_the_key_needs_the_internal_token_too(tasks) -> None:
    stub, _, _, key = tasks
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=((API_KEY_KEY, key),), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_key_on_a_call_not_made_for_a_user_is_invalid(tasks) -> None:
    stub, _, _, key = tasks
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CheckJobs(tasks_pb2.CheckJobsRequest(), metadata=as_key(key), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stub.GetUsage(tasks_pb2.GetUsageRequest(), metadata=as_key(key), timeout=5)
