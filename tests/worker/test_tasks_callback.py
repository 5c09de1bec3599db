"""The worker's Tasks calls (services/worker/completion.py) against a real grpc.aio
server: Unavailable is retried within the callback's policy, other errors are not; calls
made while one is in flight leave together as one StartJobs / CompleteJobs, each item
with its own result, error and retries."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import stamina

from services.worker import completion
from services.worker.completion import TasksCallback
from taskmesh import errors
from taskmesh.rpc import client, server, status
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

TOKEN = "internal-token-for-tests"
SERVICE = tasks_pb2.DESCRIPTOR.services_by_name["TasksService"].full_name


class FlakyTasks(tasks_pb2_grpc.TasksServiceServicer):
    """Unavailable for the first ``outage`` calls of each method, then answers;
    the job "gone" is NotFound."""

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.calls: Counter[str] = Counter()

    def _enter(self, method: str, job_id: str) -> None:
        self.calls[method] += 1
        if self.calls[method] <= self.outage:
            raise errors.Unavailable()
        if job_id == "gone":
            raise errors.NotFound("Job not found.")

    async def StartJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._enter("StartJob", request.job_id)
        return tasks_pb2.StartJobResponse(job=tasks_pb2.Job(job_id=request.job_id))

    async def CompleteJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        self._enter("CompleteJob", request.job_id)
        return tasks_pb2.CompleteJobResponse(applied=True)


class GatedTasks(FlakyTasks):
    """The first StartJob / CompleteJob waits at ``gate``; batches answer item by item
    ("gone" NotFound) after ``batch_outage`` Unavailable calls, and are recorded."""

    def __init__(self, batch_outage: int = 0) -> None:
        super().__init__(outage=0)
        self.batch_outage = batch_outage
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.batches: list[list[tuple[str, str]]] = []

    async def StartJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.entered.set()
        await self.gate.wait()
        return await super().StartJob(request, context)

    async def CompleteJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.entered.set()
        await self.gate.wait()
        return await super().CompleteJob(request, context)

    def _batch(self, method: str, items: Any) -> list[Any]:
        """Per item None (answered) or the google.rpc.Status of NotFound ("gone")."""
        self.calls[method] += 1
        if self.calls[method] <= self.batch_outage:
            raise errors.Unavailable()
        self.batches.append([(i.request.job_id, i.request_id) for i in items])
        error = status.status_of(errors.NotFound("Job not found."))
        return [error if i.request.job_id == "gone" else None for i in items]

    async def StartJobs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return tasks_pb2.StartJobsResponse(
            results=[
                tasks_pb2.StartJobsResult(error=e)
                if e is not None
                else tasks_pb2.StartJobsResult(
                    response=tasks_pb2.StartJobResponse(job=tasks_pb2.Job(job_id=i.request.job_id))
                )
                for i, e in zip(request.items, self._batch("StartJobs", request.items), strict=True)
            ]
        )

    async def CompleteJobs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return tasks_pb2.CompleteJobsResponse(
            results=[
                tasks_pb2.CompleteJobsResult(error=e)
                if e is not None
                else tasks_pb2.CompleteJobsResult(
                    response=tasks_pb2.CompleteJobResponse(applied=True)
                )
                for e in self._batch("CompleteJobs", request.items)
            ]
        )


@pytest.fixture(autouse=True)
def no_backoff() -> Any:
    """The policy's attempts as they are, without its waits: the count is the point."""
    with stamina.set_testing(True, attempts=completion.RETRY_ATTEMPTS, cap=True):
        yield


@pytest.fixture
async def tasks_for() -> AsyncIterator[Any]:
    started: list[tuple[grpc.aio.Server, grpc.aio.Channel]] = []

    async def start(servicer: FlakyTasks) -> TasksCallback:
        def register(srv: grpc.aio.Server) -> None:
            tasks_pb2_grpc.add_TasksServiceServicer_to_server(servicer, srv)

        srv, _, port = await server.start_server("127.0.0.1:0", TOKEN, [register], [SERVICE])
        channel = client.channel(f"127.0.0.1:{port}", token=TOKEN)
        started.append((srv, channel))
        return TasksCallback(channel)

    yield start
    for srv, channel in started:
        await channel.close()
        await srv.stop(None)


async def test_an_outage_shorter_than_the_retries_is_ridden_out(tasks_for: Any) -> None:
    flaky = FlakyTasks(outage=completion.RETRY_ATTEMPTS - 1)
    tasks = await tasks_for(flaky)
    started = await tasks.start_job("job-1", request_id=None)
    assert started.job.job_id == "job-1"
    done = await tasks.complete_job(tasks_pb2.CompleteJobRequest(job_id="job-1"), None)
    assert done.applied
    assert flaky.calls["StartJob"] == flaky.calls["CompleteJob"] == completion.RETRY_ATTEMPTS


async def test_an_outage_past_the_retries_is_unavailable(tasks_for: Any) -> None:
    flaky = FlakyTasks(outage=completion.RETRY_ATTEMPTS)
    tasks = await tasks_for(flaky)
    with pytest.raises(errors.Unavailable):
        await tasks.start_job("job-1", request_id=None)
    assert flaky.calls["StartJob"] == completion.RETRY_ATTEMPTS


async def test_a_first_unavailable_is_retried_by_the_policy_from_its_first_backoff(
    tasks_for: Any,
) -> None:
    """The first attempt runs outside the retry machinery; its failure must still count as
    the policy's first, with the policy's backoffs and retry hooks (logs, metrics)."""
    flaky = FlakyTasks(outage=2)
    tasks = await tasks_for(flaky)
    scheduled: list[stamina.instrumentation.RetryDetails] = []
    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([*hooks, scheduled.append])
    try:
        with stamina.set_testing(False):  # the real waits: ~0.7 s
            started = await tasks.start_job("job-1", request_id=None)
    finally:
        stamina.instrumentation.set_on_retry_hooks(hooks)
    assert started.job.job_id == "job-1"
    assert flaky.calls["StartJob"] == 3
    assert [d.retry_num for d in scheduled] == [1, 2]
    assert all(isinstance(d.caused_by, errors.Unavailable) for d in scheduled)
    for details, initial in zip(scheduled, (0.2, 0.4), strict=True):
        assert initial == completion.RETRY_WAIT_INITIAL_S * 2 ** (details.retry_num - 1)
        assert initial <= details.wait_for <= initial + completion.RETRY_JITTER_S


async def test_an_answer_is_not_retried(tasks_for: Any) -> None:
    flaky = FlakyTasks(outage=0)
    tasks = await tasks_for(flaky)
    with pytest.raises(errors.NotFound):
        await tasks.start_job("gone", request_id=None)
    assert flaky.calls["StartJob"] == 1


async def queued_behind_the_first(tasks: TasksCallback, gated: GatedTasks, calls: Any) -> Any:
    """Starts ``calls`` while the first call waits at the gate, opens it once they are
    all queued, and returns their outcomes (results or errors)."""
    await gated.entered.wait()
    pending = [asyncio.ensure_future(call) for call in calls]
    coalescers = (tasks._starts, tasks._completions)
    while sum(c.queued for c in coalescers) < len(pending):
        await asyncio.sleep(0)  # until each call has queued its item (no time passes)
    gated.gate.set()
    return await asyncio.gather(*pending, return_exceptions=True)


async def test_calls_made_during_one_in_flight_leave_as_one_batch(tasks_for: Any) -> None:
    gated = GatedTasks()
    tasks = await tasks_for(gated)
    first = asyncio.ensure_future(tasks.start_job("job-1", request_id="r1"))
    rest = await queued_behind_the_first(
        tasks, gated, [tasks.start_job(j, request_id=f"r-{j}") for j in ("job-2", "gone", "job-3")]
    )
    assert (await first).job.job_id == "job-1"
    assert [r.job.job_id for r in (rest[0], rest[2])] == ["job-2", "job-3"]
    assert isinstance(rest[1], errors.NotFound)
    assert gated.batches == [[("job-2", "r-job-2"), ("gone", "r-gone"), ("job-3", "r-job-3")]]
    assert gated.calls["StartJob"] == 1


async def test_a_batch_that_fails_unavailable_is_retried_item_by_item(tasks_for: Any) -> None:
    gated = GatedTasks(batch_outage=1)
    tasks = await tasks_for(gated)
    first = asyncio.ensure_future(
        tasks.complete_job(tasks_pb2.CompleteJobRequest(job_id="job-1"), None)
    )
    rest = await queued_behind_the_first(
        tasks,
        gated,
        [tasks.complete_job(tasks_pb2.CompleteJobRequest(job_id=j), None) for j in ("a", "b")],
    )
    assert (await first).applied
    assert all(r.applied for r in rest), rest
    # The batch of "a" and "b" failed once; each item's own retry sent it again.
    assert gated.calls["CompleteJobs"] >= 1
    assert gated.calls["CompleteJobs"] + gated.calls["CompleteJob"] >= 3
