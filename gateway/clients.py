"""The gateway's gRPC side: the Tasks service on behalf of users, and the
health of the services the gateway depends on.

Every call has a deadline and carries the internal token and the request id.
Failures come back as the domain errors of ``taskmesh.errors``, which the
problem layer turns into HTTP answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskmesh import errors
from taskmesh.rpc.client import CallCredentials
from taskmesh.rpc.status import from_rpc_error
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

log = logging.getLogger(__name__)

#: Deadline of an ordinary call: far above a healthy answer, below client patience.
DEFAULT_TIMEOUT_S = 5.0
#: Readiness probes must answer fast, or the probe itself becomes the outage.
HEALTH_TIMEOUT_S = 1.0

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

_ORDER_BY = {
    "createdAt": tasks_pb2.TASK_ORDER_BY_CREATE_TIME,
    "dueDate": tasks_pb2.TASK_ORDER_BY_DUE_TIME,
    "priorityScore": tasks_pb2.TASK_ORDER_BY_PRIORITY_SCORE,
}
_DIRECTION = {"asc": tasks_pb2.ORDER_DIRECTION_ASC, "desc": tasks_pb2.ORDER_DIRECTION_DESC}


@dataclass(frozen=True)
class User:
    id: str
    name: str


def _translate(err: grpc.aio.AioRpcError, *, method: str) -> errors.TaskmeshError:
    code = err.code()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        # The Tasks service writes rich details for a user's bad key; a bare
        # UNAUTHENTICATED means it refused *our* internal token, which no
        # client can fix.
        rich = any(key == _STATUS_DETAILS_KEY for key, _ in err.trailing_metadata() or ())
        if method != "Authenticate" or not rich:
            log.error("Tasks refused the gateway's internal credentials", extra={"rpc": method})
            return errors.TaskmeshError("Internal error.")
    converted = from_rpc_error(err)
    if type(converted) is errors.TaskmeshError or isinstance(converted, errors.Unavailable):
        log.warning(
            "Tasks call failed",
            extra={"rpc": method, "grpc_code": code.name if code else None},
        )
    return converted


class TasksClient:
    """``taskmesh.tasks.v1.TasksService`` for the HTTP routes."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        credentials: CallCredentials,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)
        self._credentials = credentials
        self._timeout_s = timeout_s

    async def authenticate(self, api_key: str, *, request_id: str) -> User:
        response = await self._unary(
            "Authenticate",
            self._stub.Authenticate,
            tasks_pb2.AuthenticateRequest(api_key=api_key),
            request_id,
        )
        return User(id=response.user_id, name=response.user_name)

    async def create_task(
        self, user_id: str, text: str, idempotency_key: str | None, *, request_id: str
    ) -> tasks_pb2.Job:
        response = await self._unary(
            "CreateTask",
            self._stub.CreateTask,
            tasks_pb2.CreateTaskRequest(
                user_id=user_id, natural_language=text, idempotency_key=idempotency_key or ""
            ),
            request_id,
        )
        job: tasks_pb2.Job = response.job
        return job

    async def get_job(self, user_id: str, job_id: str, *, request_id: str) -> tasks_pb2.Job:
        response = await self._unary(
            "GetJob",
            self._stub.GetJob,
            tasks_pb2.GetJobRequest(user_id=user_id, job_id=job_id),
            request_id,
        )
        job: tasks_pb2.Job = response.job
        return job

    async def list_jobs(
        self, user_id: str, *, state: tasks_pb2.JobState, skip: int, take: int, request_id: str
    ) -> tasks_pb2.ListJobsResponse:
        """The user's jobs, newest first; ``state`` a ``tasks_pb2.JobState`` (0: any)."""
        response: tasks_pb2.ListJobsResponse = await self._unary(
            "ListJobs",
            self._stub.ListJobs,
            tasks_pb2.ListJobsRequest(user_id=user_id, state=state, skip=skip, take=take),
            request_id,
        )
        return response

    async def cancel_job(self, user_id: str, job_id: str, *, request_id: str) -> tasks_pb2.Job:
        """Cancels the user's job; FailedPrecondition if terminal, NotFound if not theirs."""
        response = await self._unary(
            "CancelJob",
            self._stub.CancelJob,
            tasks_pb2.CancelJobRequest(user_id=user_id, job_id=job_id),
            request_id,
        )
        job: tasks_pb2.Job = response.job
        return job

    async def watch_job(
        self, user_id: str, job_id: str, *, request_id: str, timeout_s: float
    ) -> AsyncGenerator[tasks_pb2.WatchJobResponse, None]:
        """The job's state changes until it is terminal or ``timeout_s`` passes.

        Use inside ``contextlib.aclosing`` so an abandoned watch cancels its call."""
        call = self._stub.WatchJob(
            tasks_pb2.WatchJobRequest(user_id=user_id, job_id=job_id),
            timeout=timeout_s,
            metadata=self._credentials.metadata(request_id),
        )
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as err:
            raise _translate(err, method="WatchJob") from err
        finally:
            call.cancel()

    async def list_tasks(
        self,
        user_id: str,
        *,
        skip: int,
        take: int,
        order_by: str,
        order_direction: str,
        category: str | None,
        priority_level: str | None,
        request_id: str,
    ) -> tasks_pb2.ListTasksResponse:
        response: tasks_pb2.ListTasksResponse = await self._unary(
            "ListTasks",
            self._stub.ListTasks,
            tasks_pb2.ListTasksRequest(
                user_id=user_id,
                skip=skip,
                take=take,
                order_by=_ORDER_BY[order_by],
                order_direction=_DIRECTION[order_direction],
                category=category or "",
                priority_level=priority_level or "",
            ),
            request_id,
        )
        return response

    async def get_task(self, user_id: str, task_id: str, *, request_id: str) -> tasks_pb2.Task:
        response = await self._unary(
            "GetTask",
            self._stub.GetTask,
            tasks_pb2.GetTaskRequest(user_id=user_id, task_id=task_id),
            request_id,
        )
        task: tasks_pb2.Task = response.task
        return task

    async def get_usage(self, user_id: str, *, request_id: str) -> tasks_pb2.GetUsageResponse:
        response: tasks_pb2.GetUsageResponse = await self._unary(
            "GetUsage",
            self._stub.GetUsage,
            tasks_pb2.GetUsageRequest(user_id=user_id),
            request_id,
        )
        return response

    async def create_webhook(
        self, user_id: str, url: str, events: list[str], *, request_id: str
    ) -> tasks_pb2.CreateWebhookEndpointResponse:
        response: tasks_pb2.CreateWebhookEndpointResponse = await self._unary(
            "CreateWebhookEndpoint",
            self._stub.CreateWebhookEndpoint,
            tasks_pb2.CreateWebhookEndpointRequest(user_id=user_id, url=url, events=events),
            request_id,
        )
        return response

    async def list_webhooks(
        self, user_id: str, *, request_id: str
    ) -> tasks_pb2.ListWebhookEndpointsResponse:
        response: tasks_pb2.ListWebhookEndpointsResponse = await self._unary(
            "ListWebhookEndpoints",
            self._stub.ListWebhookEndpoints,
            tasks_pb2.ListWebhookEndpointsRequest(user_id=user_id),
            request_id,
        )
        return response

    async def delete_webhook(self, user_id: str, endpoint_id: str, *, request_id: str) -> None:
        await self._unary(
            "DeleteWebhookEndpoint",
            self._stub.DeleteWebhookEndpoint,
            tasks_pb2.DeleteWebhookEndpointRequest(user_id=user_id, endpoint_id=endpoint_id),
            request_id,
        )

    async def _unary(self, method: str, rpc: Any, request: Message, request_id: str) -> Any:
        try:
            return await rpc(
                request,
                timeout=self._timeout_s,
                metadata=self._credentials.metadata(request_id),
            )
        except grpc.aio.AioRpcError as err:
            raise _translate(err, method=method) from err


class DependencyHealth:
    """gRPC health (service "") of the services the gateway needs to be useful."""

    def __init__(
        self, channels: Mapping[str, grpc.aio.Channel], timeout_s: float = HEALTH_TIMEOUT_S
    ) -> None:
        self._stubs = {name: health_pb2_grpc.HealthStub(ch) for name, ch in channels.items()}
        self._timeout_s = timeout_s

    async def check(self) -> dict[str, bool]:
        """Serving or not, per dependency, asked concurrently."""
        names = list(self._stubs)
        results = await asyncio.gather(*(self._serving(self._stubs[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def _serving(self, stub: health_pb2_grpc.HealthStub) -> bool:
        try:
            response = await stub.Check(  # type: ignore[attr-defined]  # the stub package declares no RPCs on HealthStub
                health_pb2.HealthCheckRequest(service=""), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
