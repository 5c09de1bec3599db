"""The worker's calls to the Tasks service (StartJob, ReserveTokens, CompleteJob).

This module owns retries on this hop: a few quick attempts within a bounded
time, so a Tasks restart does not cost a new LLM run. Past that the job goes
back to the queue (retries.py) and nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

import grpc

from taskmesh import errors
from taskmesh.rpc.client import CallCredentials
from taskmesh.rpc.status import from_rpc_error
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
CHECK_TIMEOUT_S = 2.0
#: Backoff between attempts of one call, seconds; total well under a minute.
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0)


class TasksCallback:
    def __init__(self, channel: grpc.aio.Channel, credentials: CallCredentials) -> None:
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)
        self._credentials = credentials

    async def start_job(
        self, job_id: str, request_id: str | None, tokens_needed: int = 0
    ) -> tasks_pb2.StartJobResponse:
        """Marks the job running and admits ``tokens_needed`` (what earlier attempts spent
        + the first calls' bound) against its reservation in the same transaction."""
        return await self._call(
            self._stub.StartJob,
            tasks_pb2.StartJobRequest(job_id=job_id, tokens_needed=tokens_needed),
            request_id,
        )

    async def reserve_tokens(self, job_id: str, tokens_needed: int, request_id: str | None) -> bool:
        """Asks Tasks to make the job's reservation cover ``tokens_needed`` in all (SPEC §8);
        True when it does. Raises Unavailable when Tasks did not answer in the callback's
        retries, NotFound for an unknown job."""
        response = await self._call(
            self._stub.ReserveTokens,
            tasks_pb2.ReserveTokensRequest(job_id=job_id, tokens_needed=tokens_needed),
            request_id,
        )
        return bool(response.granted)

    async def check_jobs(self, job_ids: list[str]) -> dict[str, int]:
        """The states (tasks_pb2.JobState) of ``job_ids`` in one call, one attempt: a
        periodic check tries again at its next tick. Raises TaskmeshError on failure."""
        try:
            response = await self._stub.CheckJobs(
                tasks_pb2.CheckJobsRequest(job_ids=job_ids),
                timeout=CHECK_TIMEOUT_S,
                metadata=self._credentials.metadata(None),
            )
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        return {entry.job_id: entry.state for entry in response.jobs}

    async def complete_job(
        self, request: tasks_pb2.CompleteJobRequest, request_id: str | None
    ) -> tasks_pb2.CompleteJobResponse:
        return await self._call(self._stub.CompleteJob, request, request_id)

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        request_id: str | None,
    ) -> _Response:
        for attempt, pause in enumerate((*BACKOFF_S, None)):
            try:
                return await method(
                    request, timeout=CALL_TIMEOUT_S, metadata=self._credentials.metadata(request_id)
                )
            except grpc.aio.AioRpcError as err:
                exc = from_rpc_error(err)
                if not isinstance(exc, errors.Unavailable) or pause is None:
                    raise exc from None
                log.warning("tasks unavailable (attempt %d); retrying", attempt + 1)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")
