"""``/api/v1/jobs``: poll a job, follow it as a server-sent event stream, cancel it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from sanic import HTTPResponse, Request

from gateway import sse
from gateway.auth import authenticated
from gateway.body import query
from gateway.clients import User
from gateway.ids import resource_id
from gateway.request_ids import request_id_of
from gateway.responses import POLL_AFTER, json_model
from gateway.routing import Reply, route
from gateway.schemas import (
    Job,
    JobList,
    ListJobsQuery,
    job_from_proto,
    job_list_from_proto,
    proto_state,
)
from gateway.state import state
from taskmesh import errors
from taskmesh.logs import bind
from taskmesh.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)


@route(
    "get",
    "/api/v1/jobs",
    "listJobs",
    "List the caller's jobs, newest first, paginated.",
    "jobs",
    {200: Reply("A page of jobs.", JobList)},
    query=ListJobsQuery,
    problems=(400,),
)
@authenticated
async def list_jobs(request: Request, user: User) -> HTTPResponse:
    """``GET /api/v1/jobs``: the caller's jobs, newest first (SPEC §5)."""
    params = query(request, ListJobsQuery)
    response = await state(request).tasks.list_jobs(
        user.id,
        state=proto_state(params.status),
        skip=params.skip,
        take=params.take,
        request_id=request_id_of(request),
    )
    return json_model(job_list_from_proto(response, params))


@route(
    "get",
    "/api/v1/jobs/{jobId}",
    "getJob",
    "A job's state; the task once succeeded, the error once failed.",
    "jobs",
    {200: Reply("The job; Retry-After while not terminal.", Job, headers=("Retry-After",))},
    problems=(404,),
)
@authenticated
async def get_job(request: Request, user: User, job_id: str) -> HTTPResponse:
    job = job_from_proto(
        await state(request).tasks.get_job(
            user.id, resource_id(job_id, "Job"), request_id=request_id_of(request)
        )
    )
    headers = {} if job.terminal else {"Retry-After": POLL_AFTER}
    return json_model(job, headers=headers)


@route(
    "post",
    "/api/v1/jobs/{jobId}/cancel",
    "cancelJob",
    "Cancel a queued or running job: it never runs, or its LLM calls stop within about a "
    "second; status `cancelled`, no task, the reservation settled to the tokens actually "
    "spent. 409 when the job has already finished.",
    "jobs",
    {200: Reply("The cancelled job.", Job)},
    problems=(404, 409),
)
@authenticated
async def cancel_job(request: Request, user: User, job_id: str) -> HTTPResponse:
    """``POST /api/v1/jobs/{jobId}/cancel``: 200 with the cancelled job; 409 problem when
    the job is already terminal; 404 for an unknown job or another user's."""
    job = job_from_proto(
        await state(request).tasks.cancel_job(
            user.id, resource_id(job_id, "Job"), request_id=request_id_of(request)
        )
    )
    return json_model(job)


async def _next(
    events: AsyncIterator[tasks_pb2.WatchJobResponse],
) -> tasks_pb2.WatchJobResponse | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


@route(
    "get",
    "/api/v1/jobs/{jobId}/events",
    "watchJob",
    "Follow a job: one server-sent event per state change, until terminal.",
    "jobs",
    {
        200: Reply(
            "`id: <sequence>`, `event: <status>`, `data: <Job JSON>` per state change.",
            content_type=sse.CONTENT_TYPE,
        ),
        204: Reply("Resumed after the terminal event: nothing more will come.", content_type=None),
    },
    extra_headers=("Last-Event-ID",),
    problems=(404,),
)
@authenticated
async def job_events(request: Request, user: User, job_id: str) -> HTTPResponse | None:
    gateway, request_id = state(request), request_id_of(request)
    job_id = resource_id(job_id, "Job")
    seen = sse.last_event_id(request.headers.get("Last-Event-ID"))
    watch = gateway.tasks.watch_job(
        user.id, job_id, request_id=request_id, timeout_s=gateway.stream_timeout_s
    )
    stream = _EventStream(request, seen)
    async with aclosing(watch) as events:
        with bind(request_id=request_id):
            await stream.run(events, gateway.stopping)
    if stream.response is None:
        # Everything was seen and the job is over; 204 tells an EventSource
        # to stop reconnecting.
        return HTTPResponse(status=204)
    await stream.response.eof()
    return None


class _EventStream:
    """Sends each state change newer than ``seen`` until the job is terminal.

    Headers go out lazily: until the first byte, an unknown job or a Tasks
    outage is still answered with a proper status, and a client resuming
    after the end gets 204 instead of an empty stream."""

    def __init__(self, request: Request, seen: int | None) -> None:
        self._request = request
        self._seen = seen
        self.response: HTTPResponse | None = None

    async def _send(self, data: str) -> None:
        if self.response is None:
            self.response = await self._request.respond(
                content_type=sse.CONTENT_TYPE,
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        await self.response.send(data)

    async def run(
        self, events: AsyncIterator[tasks_pb2.WatchJobResponse], stopping: asyncio.Event
    ) -> None:
        stop = asyncio.ensure_future(stopping.wait())
        pending: asyncio.Future[tasks_pb2.WatchJobResponse | None] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(_next(events))
                interval = sse.FIRST_BYTE_S if self.response is None else sse.KEEPALIVE_INTERVAL_S
                while not pending.done():
                    done, _ = await asyncio.wait(
                        {pending, stop}, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stop in done and pending not in done:
                        if self.response is None:
                            raise errors.Unavailable("Shutting down.")
                        # The client resumes elsewhere with Last-Event-ID.
                        return
                    if not done:
                        await self._send(sse.KEEPALIVE)
                        interval = sse.KEEPALIVE_INTERVAL_S
                try:
                    message = pending.result()
                except errors.TaskmeshError as exc:
                    if self.response is None:
                        raise
                    log.warning("job event stream interrupted", extra={"error": type(exc).__name__})
                    return
                if message is None:
                    return
                job = job_from_proto(message.job)
                if self._seen is None or message.sequence > self._seen:
                    await self._send(sse.job_event(message.sequence, job))
                if job.terminal:
                    return
        finally:
            # The watch generator may only be closed once nothing is awaiting it.
            for future in (stop, pending):
                if future is not None and not future.done():
                    future.cancel()
                    await asyncio.wait({future})
