"""The worker's calls to the Tasks service (StartJob, ReserveTokens, CompleteJob).

Concurrent starts and completions are coalesced (``taskmesh.batching.Coalescer``): a
lone call goes at once as the unary StartJob / CompleteJob; calls made while one is in
flight leave together as one StartJobs / CompleteJobs when it returns, so a burst pays
a call's and a transaction's fixed cost once per batch (issue #12). Each item keeps its
own result, error and retries.

This module owns retries on this hop: a few quick attempts within a bounded
time (RETRY_*), so a Tasks restart does not cost a new LLM run. Past that the
job goes back to the queue (retries.py) and nothing is lost. The channel's
``taskmesh.rpc.calls`` interceptor adds credentials and ids, sets the deadline
and raises the domain errors of ``taskmesh.errors``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import grpc
import stamina

from taskmesh import errors, tracing
from taskmesh.batching import Coalescer
from taskmesh.rpc import status
from taskmesh.rpc.calls import REQUEST_ID_KEY
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

#: CheckJobs runs every 0.5 s: a slow answer is better skipped than waited for.
CHECK_TIMEOUT_S = 2.0
#: Attempts of one call while Tasks is unavailable, and the backoff between them
#: (seconds, doubling from RETRY_WAIT_INITIAL_S to RETRY_WAIT_MAX_S): SPEC §8 has Tasks
#: serve again within 3 s of answering, so ~6 s of attempts ride out a restart.
RETRY_ATTEMPTS = 6
RETRY_WAIT_INITIAL_S = 0.2
RETRY_WAIT_MAX_S = 4.0
RETRY_JITTER_S = 0.1
#: Bound of all attempts of one call together, seconds.
RETRY_TIMEOUT_S = 30.0

#: Starts (and completions) per StartJobs (CompleteJobs) call at most: a burst's worth
#: (the worker's prefetch is WORKER_CONCURRENCY); Tasks takes up to 1,000.
MAX_BATCH = 128
#: Seconds a start or completion batch may wait under load for as many items as the batch
#: before it (``Coalescer(linger_s)``): as the worker's LLM calls got cheaper, its batches
#: to Tasks shrank and Tasks paid each batch's fixed cost more often.
LINGER_S = 0.002

Response = TypeVar("Response")
#: (the request, its request id, its caller's trace context): what one start or completion
#: carries into a batch, which is sent from a context of its own (taskmesh.batching).
_Start = tuple[tasks_pb2.StartJobRequest, str | None, dict[str, str]]
_Completion = tuple[tasks_pb2.CompleteJobRequest, str | None, dict[str, str]]


def _metadata(request_id: str | None) -> tuple[tuple[str, str], ...]:
    return ((REQUEST_ID_KEY, request_id),) if request_id else ()


async def _send(
    unary: Callable[..., Awaitable[Any]],
    batch: Callable[[Any], Awaitable[Any]],
    batch_request: Callable[..., Any],
    batch_item: Callable[..., Any],
    calls: list[tuple[Any, str | None, dict[str, str]]],
) -> list[Any]:
    """Sends coalesced ``calls`` (request, request id, trace context): one alone as the
    ``unary`` call (no batch's overhead), several as one ``batch`` call of ``batch_request(
    items=[batch_item(request=…, request_id=…)])``, in the first call's trace. Per call its
    response or the domain error of its item's status; a failed call raises (every item's
    caller hears it)."""
    if len(calls) == 1:
        request, request_id, trace = calls[0]
        with tracing.continued(trace):
            return [await unary(request, metadata=_metadata(request_id))]
    items = [
        batch_item(request=request, request_id=request_id or "") for request, request_id, _ in calls
    ]
    with tracing.continued(calls[0][2]):
        response = await batch(batch_request(items=items))
    return [
        status.from_status(result.error) if result.HasField("error") else result.response
        for result in response.results
    ]


class TasksCallback:
    """The Tasks service as the worker sees it, over a channel made by
    ``taskmesh.rpc.client.channel(..., token=...)``. ``max_batch``: starts (and
    completions) per call at most."""

    def __init__(self, channel: grpc.aio.Channel, *, max_batch: int = MAX_BATCH) -> None:
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)
        stub = self._stub
        self._starts: Coalescer[_Start, tasks_pb2.StartJobResponse] = Coalescer(
            partial(
                _send,
                stub.StartJob,
                stub.StartJobs,
                tasks_pb2.StartJobsRequest,
                tasks_pb2.StartJobsItem,
            ),
            max_batch=max_batch,
            linger_s=LINGER_S,
        )
        self._completions: Coalescer[_Completion, tasks_pb2.CompleteJobResponse] = Coalescer(
            partial(
                _send,
                stub.CompleteJob,
                stub.CompleteJobs,
                tasks_pb2.CompleteJobsRequest,
                tasks_pb2.CompleteJobsItem,
            ),
            max_batch=max_batch,
            linger_s=LINGER_S,
        )

    async def start_job(
        self, job_id: str, request_id: str | None, tokens_needed: int = 0
    ) -> tasks_pb2.StartJobResponse:
        """Marks the job running and admits ``tokens_needed`` (what earlier attempts spent
        + the first calls' bound) against its reservation in the same transaction."""
        start = (
            tasks_pb2.StartJobRequest(job_id=job_id, tokens_needed=tokens_needed),
            request_id,
            tracing.trace_context(),
        )
        return await self._call(lambda: self._starts.submit(start))

    async def reserve_tokens(self, job_id: str, tokens_needed: int, request_id: str | None) -> bool:
        """Asks Tasks to make the job's reservation cover ``tokens_needed`` in all (SPEC §8);
        True when it does. Raises Unavailable when Tasks did not answer in the callback's
        retries, NotFound for an unknown job."""
        request = tasks_pb2.ReserveTokensRequest(job_id=job_id, tokens_needed=tokens_needed)
        response = await self._call(
            lambda: self._stub.ReserveTokens(request, metadata=_metadata(request_id))
        )
        return bool(response.granted)

    async def check_jobs(self, job_ids: list[str]) -> dict[str, int]:
        """The states (tasks_pb2.JobState) of ``job_ids`` in one call, one attempt: a
        periodic check tries again at its next tick. Raises TaskmeshError on failure."""
        response = await self._stub.CheckJobs(
            tasks_pb2.CheckJobsRequest(job_ids=job_ids), timeout=CHECK_TIMEOUT_S
        )
        return {entry.job_id: entry.state for entry in response.jobs}

    async def complete_job(
        self, request: tasks_pb2.CompleteJobRequest, request_id: str | None
    ) -> tasks_pb2.CompleteJobResponse:
        """Records the job's outcome; idempotent on ``job_id`` (SPEC §6), hence retried."""
        completion = (request, request_id, tracing.trace_context())
        return await self._call(lambda: self._completions.submit(completion))

    @staticmethod
    async def _call(make: Callable[[], Awaitable[Response]]) -> Response:
        """``make()``'s answer, made again while Tasks is Unavailable (RETRY_*); any
        other error, or Unavailable past the last attempt, is raised.

        The first attempt runs bare: setting up stamina's retry context (tenacity's
        retrying object, its hooks) cost ~0.2 ms of worker CPU per job on calls that
        succeed (issue #12). A first Unavailable enters the same policy as its first
        failed attempt, so the waits, the attempt count, the overall timeout and
        stamina's retry hooks are those of a call retried from the start."""
        started = time.monotonic()
        try:
            return await make()
        except errors.Unavailable as exc:
            failure = exc
        # The timeout runs from the first attempt, as it did inside the context.
        remaining = RETRY_TIMEOUT_S - (time.monotonic() - started)
        if remaining <= 0 and not stamina.is_testing():
            raise failure
        replayed = False
        async for attempt in stamina.retry_context(
            on=errors.Unavailable,
            attempts=RETRY_ATTEMPTS,
            timeout=max(remaining, 0.001),
            wait_initial=RETRY_WAIT_INITIAL_S,
            wait_max=RETRY_WAIT_MAX_S,
            wait_jitter=RETRY_JITTER_S,
        ):
            with attempt:
                if not replayed:
                    replayed = True
                    raise failure
                return await make()
        raise AssertionError("unreachable: the last attempt raises")
