"""The worker's Tasks calls (services/worker/completion.py) against a real grpc.aio
server: Unavailable is retried within the callback's policy, other errors are not."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import stamina

from services.worker import completion
from services.worker.completion import TasksCallback
from taskmesh import errors
from taskmesh.rpc import client, server
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


async def test_an_answer_is_not_retried(tasks_for: Any) -> None:
    flaky = FlakyTasks(outage=0)
    tasks = await tasks_for(flaky)
    with pytest.raises(errors.NotFound):
        await tasks.start_job("gone", request_id=None)
    assert flaky.calls["StartJob"] == 1
