"""StartJobs and CompleteJobs (issue #12) through a real in-process grpc.aio server, on
SQLite and PostgreSQL: each item's result is what its unary call answers (the response,
or the same status code, message and details), one item's failure leaves the others
applied, a batch without failures is one transaction, and afterwards every succeeded job
has one task and the ledger balances."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService, StartItem
from services.tasks.domain.users import UserService
from services.tasks.storage.repository import Store
from services.tasks.transport import convert
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.rpc import server
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.tasks.conftest import ESTIMATE, FakeDispatcher, reads

pytestmark = pytest.mark.timeout(60)

TOKEN = "batch-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
RESULT = jobs_pb2.ParseTaskOutput(
    title="Pay Bill",
    category="finance",
    priority=jobs_pb2.Priority(level="high", score=7, reason="Fees."),
    subtasks=["Open Bank App", "Enter The Amount", "Confirm Payment"],
)
VAGUE = tasks_pb2.JobError(
    type=tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT, message="Too vague.", suggestions=["Add a date"]
)
VAGUE_DOMAIN = convert.error_from_proto(VAGUE)
USAGE = jobs_pb2.TokenUsage(input_tokens=900, output_tokens=100)
CALLS = [jobs_pb2.LlmCallUsage(operation="core", input_tokens=900, output_tokens=100)]


@dataclass
class Env:
    stub: tasks_pb2_grpc.TasksServiceStub
    jobs: JobService
    user: str
    #: write transactions opened so far
    writes: list[int]


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    store = Store(database_url)
    await store.open()
    user, _ = await UserService(store).create("alice")
    policy = JobPolicy(BudgetPolicy(86_400, 100 * ESTIMATE, ESTIMATE), 900)
    jobs = JobService(store, FakeDispatcher(), policy)
    writes = [0]
    write = store.write

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        writes[0] += 1
        async with write() as tx:
            yield tx

    store.write = counted  # type: ignore[method-assign]  # counts transactions, same behaviour
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(TasksServicer(jobs, UserService(store)))], [SERVICE_NAME]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield Env(tasks_pb2_grpc.TasksServiceStub(channel), jobs, user.id, writes)
    await channel.close()
    await grpc_server.stop(None)
    await store.close()


async def new_job(env: Env, *, started: bool = True) -> str:
    job = await env.jobs.create(env.user, "Pay the electricity bill tomorrow")
    if started:
        await env.jobs.start(job.id)
    return job.id


def complete(job_id: str, **outcome: Any) -> tasks_pb2.CompleteJobRequest:
    return tasks_pb2.CompleteJobRequest(job_id=job_id, usage=USAGE, calls=CALLS, **outcome)


async def unary(call: Callable[[], Awaitable[Any]]) -> Any:
    """The unary answer: the response, or the status the call failed with."""
    try:
        return await call()
    except grpc.aio.AioRpcError as err:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]  # an AioRpcError is a Call
        assert status is not None
        return status


def outcome(result: tasks_pb2.StartJobsResult | tasks_pb2.CompleteJobsResult) -> Any:
    return result.error if result.HasField("error") else result.response


def shape(answer: Any) -> Any:
    """An answer without what differs between twin jobs (ids, times)."""
    if isinstance(answer, status_pb2.Status):
        return ("error", answer.SerializeToString(deterministic=True))
    job = answer.job
    task = job.task
    fields = {
        name: getattr(answer, name)
        for name in ("applied", "budget_granted", "reserved_tokens")
        if hasattr(answer, name)
    }
    return (
        fields,
        job.state,
        job.attempts,
        job.error.SerializeToString(deterministic=True),
        (task.title, [s.title for s in task.subtasks]) if job.HasField("task") else None,
    )


async def complete_scenario(env: Env) -> dict[str, tasks_pb2.CompleteJobRequest]:
    """One job (or request) per case of a mixed CompleteJobs batch, set up the same way
    each time it is called."""
    repeat = await new_job(env)
    await env.jobs.complete(repeat, VAGUE_DOMAIN, 700, [m.CallUsage("core", 600, 100)])
    cancelled = await new_job(env)
    await env.jobs.cancel(env.user, cancelled)
    return {
        "success": complete(await new_job(env), parse_task=RESULT),
        "vague": complete(await new_job(env), error=VAGUE),
        "unknown": complete("no-such-job", parse_task=RESULT),
        "repeat": complete(repeat, parse_task=RESULT),
        "after_cancel": complete(cancelled, parse_task=RESULT),
        "no_outcome": tasks_pb2.CompleteJobRequest(job_id=await new_job(env), usage=USAGE),
    }


async def test_complete_jobs_answers_each_item_as_complete_job_does(env: Env) -> None:
    alone = await complete_scenario(env)
    expected = {
        case: shape(await unary(lambda r=request: env.stub.CompleteJob(r, metadata=AUTH)))
        for case, request in alone.items()
    }
    batched = await complete_scenario(env)
    cases = list(batched)
    before = env.writes[0]
    response = await env.stub.CompleteJobs(
        tasks_pb2.CompleteJobsRequest(
            items=[
                tasks_pb2.CompleteJobsItem(request=request, request_id=f"req-{case}")
                for case, request in batched.items()
            ]
        ),
        metadata=AUTH,
    )
    assert len(response.results) == len(cases)
    # The unknown job's NotFound rolled the first transaction back; the others ran again
    # together in a second one (the item without an outcome never reached the database).
    assert env.writes[0] - before == 2
    got = {case: shape(outcome(r)) for case, r in zip(cases, response.results, strict=True)}
    assert got == expected
    codes = {
        case: outcome(r).code
        for case, r in zip(cases, response.results, strict=True)
        if r.HasField("error")
    }
    assert codes == {
        "unknown": grpc.StatusCode.NOT_FOUND.value[0],
        "no_outcome": grpc.StatusCode.INVALID_ARGUMENT.value[0],
    }
    applied = [c for c, r in zip(cases, response.results, strict=True) if r.response.applied]
    assert applied == ["success", "vague"]
    await assert_one_task_per_job_and_balanced(env)


async def test_two_completions_of_one_job_in_a_batch_apply_once(env: Env) -> None:
    job_id = await new_job(env)
    request = complete(job_id, parse_task=RESULT)
    response = await env.stub.CompleteJobs(
        tasks_pb2.CompleteJobsRequest(
            items=[tasks_pb2.CompleteJobsItem(request=request) for _ in range(2)]
        ),
        metadata=AUTH,
    )
    first, second = (r.response for r in response.results)
    assert (first.applied, second.applied) == (True, False)
    assert first.job.task.task_id == second.job.task.task_id != ""
    usage = await env.stub.GetUsage(tasks_pb2.GetUsageRequest(user_id=env.user), metadata=AUTH)
    assert (usage.used, usage.reserved) == (1000, 0)
    await assert_one_task_per_job_and_balanced(env)


async def test_a_batch_without_failures_is_one_transaction(env: Env) -> None:
    starts = [await new_job(env, started=False) for _ in range(5)]
    before = env.writes[0]
    response = await env.stub.StartJobs(
        tasks_pb2.StartJobsRequest(
            items=[
                tasks_pb2.StartJobsItem(
                    request=tasks_pb2.StartJobRequest(job_id=j, tokens_needed=ESTIMATE + 100)
                )
                for j in starts
            ]
        ),
        metadata=AUTH,
    )
    assert env.writes[0] - before == 1
    assert all(
        r.response.job.state == tasks_pb2.JOB_STATE_RUNNING and r.response.budget_granted
        for r in response.results
    )
    before = env.writes[0]
    response2 = await env.stub.CompleteJobs(
        tasks_pb2.CompleteJobsRequest(
            items=[
                tasks_pb2.CompleteJobsItem(request=complete(j, parse_task=RESULT)) for j in starts
            ]
        ),
        metadata=AUTH,
    )
    assert env.writes[0] - before == 1
    assert all(r.response.applied for r in response2.results)
    await assert_one_task_per_job_and_balanced(env)


async def start_scenario(env: Env) -> dict[str, tasks_pb2.StartJobRequest]:
    cancelled = await new_job(env, started=False)
    await env.jobs.cancel(env.user, cancelled)
    return {
        "queued": tasks_pb2.StartJobRequest(
            job_id=await new_job(env, started=False), tokens_needed=ESTIMATE + 300
        ),
        "again": tasks_pb2.StartJobRequest(job_id=await new_job(env)),
        "unknown": tasks_pb2.StartJobRequest(job_id="no-such-job"),
        "cancelled": tasks_pb2.StartJobRequest(job_id=cancelled, tokens_needed=ESTIMATE),
        "negative": tasks_pb2.StartJobRequest(job_id=await new_job(env), tokens_needed=-1),
        "no_room": tasks_pb2.StartJobRequest(
            job_id=await new_job(env, started=False), tokens_needed=1_000 * ESTIMATE
        ),
    }


async def test_start_jobs_answers_each_item_as_start_job_does(env: Env) -> None:
    alone = await start_scenario(env)
    expected = {
        case: shape(await unary(lambda r=request: env.stub.StartJob(r, metadata=AUTH)))
        for case, request in alone.items()
    }
    batched = await start_scenario(env)
    response = await env.stub.StartJobs(
        tasks_pb2.StartJobsRequest(
            items=[tasks_pb2.StartJobsItem(request=r) for r in batched.values()]
        ),
        metadata=AUTH,
    )
    got = {case: shape(outcome(r)) for case, r in zip(batched, response.results, strict=True)}
    assert got == expected
    assert got["unknown"][0] == "error" and got["negative"][0] == "error"
    assert got["queued"][0]["budget_granted"] and not got["no_room"][0]["budget_granted"]
    await assert_one_task_per_job_and_balanced(env)


async def test_a_batch_over_the_limit_is_refused_whole(env: Env) -> None:
    request = tasks_pb2.StartJobsRequest(
        items=[tasks_pb2.StartJobsItem(request=tasks_pb2.StartJobRequest(job_id="x"))] * 1_001
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.stub.StartJobs(request, metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def assert_one_task_per_job_and_balanced(env: Env) -> None:
    async with env.jobs.store.read() as tx:
        rows = await tx.driver.fetchall(
            "SELECT j.id, j.state, COUNT(t.id) FROM jobs j LEFT JOIN tasks t ON t.job_id = j.id"
            " GROUP BY j.id, j.state"
        )
    for job_id, state, tasks in rows:
        assert tasks == (1 if state == "succeeded" else 0), (job_id, state, tasks)
    check = await reads(env.jobs).ledger_check()
    assert check.unbalanced_windows == [] and check.jobs == []


async def test_a_database_error_runs_each_item_alone(env: Env) -> None:
    queued = [await new_job(env, started=False) for _ in range(3)]
    broken = queued[1]

    async def step(tx: Any, item: StartItem) -> str:
        await tx.jobs.mark_running(item.job_id, env.jobs.now())
        if item.job_id == broken:
            raise RuntimeError("a statement failed")  # not a domain error: the tx's fault?
        return item.job_id

    before = env.writes[0]
    results = await env.jobs._batch([StartItem(j, 0) for j in queued], step)
    assert results[0] == queued[0] and results[2] == queued[2]
    assert isinstance(results[1], RuntimeError)
    assert env.writes[0] - before == 1 + 3  # the batch, then each item alone
    states = {j: (await reads(env.jobs).states([j]))[j] for j in queued}
    assert states == {
        queued[0]: m.JobState.RUNNING,
        broken: m.JobState.QUEUED,
        queued[2]: m.JobState.RUNNING,
    }
