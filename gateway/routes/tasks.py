"""``/api/v1/tasks``: submit a sentence, list and read tasks."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from sanic import HTTPResponse, Request

from gateway.auth import authenticated
from gateway.body import json_object, query, validate
from gateway.clients import User
from gateway.headers import idempotency_key, preferred_wait
from gateway.ids import resource_id
from gateway.request_ids import request_id_of
from gateway.responses import POLL_AFTER, json_model
from gateway.routing import Reply, route
from gateway.schemas import (
    CreateTaskBody,
    Job,
    JobAccepted,
    JobStatus,
    ListTasksQuery,
    Task,
    TaskList,
    accepted,
    job_from_proto,
    job_location,
    task_from_proto,
    task_list_from_proto,
)
from gateway.state import GatewayState, state
from taskmesh import errors

log = logging.getLogger(__name__)


async def _wait_for_outcome(
    gateway: GatewayState, user: User, job_id: str, wait_s: int, request_id: str
) -> tuple[Job | None, JobStatus]:
    """The job once terminal (or None if it was not within ``wait_s``), and the last
    state seen, for the 202 that answers a wait that ran out.

    The job already exists, so a failure while waiting must not turn the
    answer into an error: the client would resubmit. It gets the 202 instead."""
    seen: JobStatus = "queued"
    watch = gateway.tasks.watch_job(user.id, job_id, request_id=request_id, timeout_s=wait_s + 1.0)
    try:
        async with asyncio.timeout(wait_s), aclosing(watch) as events:
            async for event in events:
                job = job_from_proto(event.job)
                seen = job.status
                if job.terminal:
                    return job, seen
    except TimeoutError:
        return None, seen
    except errors.TaskmeshError as exc:
        log.warning("waiting for job failed; answering 202", extra={"error": type(exc).__name__})
    return None, seen


@route(
    "post",
    "/api/v1/tasks",
    "createTask",
    "Submit a sentence; a job turns it into a task.",
    "tasks",
    {
        202: Reply(
            "Accepted: the job is queued.", JobAccepted, headers=("Location", "Retry-After")
        ),
        201: Reply(
            "With `Prefer: wait`: the job succeeded in time; the body is the job with its task.",
            Job,
            headers=("Location", "Preference-Applied"),
        ),
        200: Reply(
            "With `Prefer: wait`: the job ended in time without a task (failed, for instance "
            "vague input); the body is the job with its error.",
            Job,
            headers=("Location", "Preference-Applied"),
        ),
    },
    body=CreateTaskBody,
    extra_headers=("Idempotency-Key", "Prefer"),
    problems=(400, 413, 415, 422),
)
@authenticated
async def create_task(request: Request, user: User) -> HTTPResponse:
    body = validate(CreateTaskBody, json_object(request))
    key = idempotency_key(request)
    gateway, request_id = state(request), request_id_of(request)
    created = await gateway.tasks.create_task(
        user.id, body.natural_language, key, request_id=request_id
    )
    location = job_location(created.job_id)
    wait_s = preferred_wait(request)
    if wait_s is not None:
        job, seen = await _wait_for_outcome(gateway, user, created.job_id, wait_s, request_id)
        applied = {"Preference-Applied": f"wait={wait_s}"}
        if job is not None:
            # SPEC §5: 201 when a task was created in time, 200 when the job
            # ended without one (failed, cancelled): nothing was created.
            status = 201 if job.task is not None else 200
            return json_model(job, status, {"Location": location, **applied})
        return json_model(
            accepted(created, seen),
            202,
            {"Location": location, "Retry-After": POLL_AFTER, **applied},
        )
    return json_model(accepted(created), 202, {"Location": location, "Retry-After": POLL_AFTER})


@route(
    "get",
    "/api/v1/tasks",
    "listTasks",
    "List the caller's tasks, paginated.",
    "tasks",
    {200: Reply("A page of tasks.", TaskList)},
    query=ListTasksQuery,
    problems=(400,),
)
@authenticated
async def list_tasks(request: Request, user: User) -> HTTPResponse:
    params = query(request, ListTasksQuery)
    response = await state(request).tasks.list_tasks(
        user.id,
        skip=params.skip,
        take=params.take,
        order_by=params.order_by,
        order_direction=params.order_direction,
        category=params.category,
        priority_level=params.priority_level,
        request_id=request_id_of(request),
    )
    return json_model(task_list_from_proto(response, params))


@route(
    "get",
    "/api/v1/tasks/{taskId}",
    "getTask",
    "One task.",
    "tasks",
    {200: Reply("The task.", Task)},
    problems=(404,),
)
@authenticated
async def get_task(request: Request, user: User, task_id: str) -> HTTPResponse:
    task = await state(request).tasks.get_task(
        user.id, resource_id(task_id, "Task"), request_id=request_id_of(request)
    )
    return json_model(task_from_proto(task))
