"""The Tasks service's way to the AI service: concurrent dispatches coalesced into
ExecuteCapabilities calls (ASYNC), over a channel made by
``taskmesh.rpc.client.channel(..., token=...)`` (credentials, deadlines and domain
errors are its interceptor's)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.tasks.domain import models as m
from services.tasks.transport.convert import ts
from taskmesh import errors, tracing
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc
from taskmesh.batching import Coalescer
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.rpc.status import from_status

log = logging.getLogger(__name__)

#: Items per ExecuteCapabilities call at most (the AI service takes up to
#: services.ai.transport.servicer.MAX_BATCH_ITEMS).
MAX_BATCH = 256
#: Serialized items per call at most, bytes: the AI server refuses messages over
#: taskmesh.rpc.server.MAX_MESSAGE_BYTES (256 KiB), so a larger batch leaves in several calls.
MAX_CALL_BYTES = 192 * 1024
#: The least deadline given to a call, seconds (as taskmesh.rpc.calls.MIN_FORWARD_S): below
#: it a call cannot succeed, but it must still be made so the failure is the callee's.
MIN_CALL_S = 0.05


@dataclass(frozen=True, slots=True)
class _Item:
    request: ai_pb2.ExecuteCapabilityRequest
    #: time.monotonic() by which its caller stops waiting.
    deadline: float


class AiDispatcher:
    """Hands accepted jobs to the AI service (``services.tasks.domain.jobs.Dispatcher``).

    Concurrent ``dispatch`` calls leave together in one ``ExecuteCapabilities`` call
    (``taskmesh.batching.Coalescer``: a lone dispatch goes at once; the next batch leaves
    when the previous one returned); each caller hears its own item's outcome."""

    def __init__(self, channel: grpc.aio.Channel, *, max_batch: int = MAX_BATCH) -> None:
        self._stub = ai_pb2_grpc.AiServiceStub(channel)
        # Built once: the constructor of each request copies it.
        self._config = default_config()
        self._batches: Coalescer[_Item, None] = Coalescer(self._send, max_batch=max_batch)

    @property
    def queued(self) -> int:
        """Dispatches waiting for the next call (one is in flight)."""
        return self._batches.queued

    async def dispatch(self, job: m.Job, reservation: m.ReservationInfo, timeout: float) -> None:
        """Returns once the AI service queued ``job`` (the broker confirmed it). Raises
        InvalidInput / InjectionDetected (refused), Unavailable (not queued, or no answer
        within ``timeout`` seconds), or the internal error the AI service answered."""
        request = ai_pb2.ExecuteCapabilityRequest(
            capability=jobs_pb2.CAPABILITY_PARSE_TASK,
            pattern=ai_pb2.EXECUTION_PATTERN_ASYNC,
            job_id=job.id,
            user_id=job.user_id,
            parse_task=jobs_pb2.ParseTaskInput(
                natural_language=job.natural_language,
                config=self._config,
                reference_time=ts(job.created_at),
            ),
            reservation=jobs_pb2.Reservation(
                tokens=reservation.tokens,
                # Whole seconds since the epoch: the Timestamp needs no datetime.
                window_start=Timestamp(seconds=reservation.window_start),
            ),
            # The batch leaves from a context of its own: the ids and the trace go in the item.
            request_id=job.request_id or "",
            trace_context=tracing.trace_context(),
        )
        try:
            async with asyncio.timeout(timeout):
                await self._batches.submit(_Item(request, time.monotonic() + timeout))
        except TimeoutError:
            # What a unary call past its deadline raised (DEADLINE_EXCEEDED): the job was
            # not confirmed in time.
            log.warning("dispatch not answered in time", extra={"timeout_s": timeout})
            raise errors.Unavailable() from None

    async def _send(self, items: list[_Item]) -> list[BaseException | None]:
        calls = _calls(items)
        if len(calls) == 1:
            return await self._call(calls[0])
        outcomes = await asyncio.gather(*(self._call(call) for call in calls))
        return [outcome for call in outcomes for outcome in call]

    async def _call(self, items: Sequence[_Item]) -> list[BaseException | None]:
        """One ExecuteCapabilities call: each item's outcome, None when accepted. A failed
        call (the AI service down) fails each of its items with its error."""
        # The batch waits as long as its most patient caller; the others stop waiting at
        # their own deadline (dispatch).
        timeout = max(MIN_CALL_S, max(item.deadline for item in items) - time.monotonic())
        try:
            response = await self._stub.ExecuteCapabilities(
                ai_pb2.ExecuteCapabilitiesRequest(requests=[item.request for item in items]),
                timeout=timeout,
            )
        except errors.TaskmeshError as exc:
            return [exc] * len(items)
        if len(response.results) != len(items):
            failure = errors.TaskmeshError("Internal error.")
            return [failure] * len(items)
        return [
            None if result.WhichOneof("outcome") == "response" else from_status(result.error)
            for result in response.results
        ]


def _calls(items: list[_Item]) -> list[list[_Item]]:
    """``items`` cut into calls of at most MAX_CALL_BYTES of requests each."""
    calls: list[list[_Item]] = [[]]
    size = 0
    for item in items:
        # Each item's field tag and length prefix included, with room to spare.
        item_bytes = item.request.ByteSize() + 8
        if calls[-1] and size + item_bytes > MAX_CALL_BYTES:
            calls.append([])
            size = 0
        calls[-1].append(item)
        size += item_bytes
    return calls
