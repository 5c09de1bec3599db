"""The gateway's gRPC side: the Tasks service on behalf of users, and the
health of the services the gateway depends on.

Every call has a deadline and carries the internal token and the request id
(the channel's ``taskmesh.rpc.calls`` interceptor). Failures come back as the
domain errors of ``taskmesh.errors``, which the problem layer turns into HTTP
answers."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskmesh import tracing
from taskmesh.batching import Coalescer
from taskmesh.rpc import status
from taskmesh.rpc.caller import API_KEY_KEY, user_of
from taskmesh.rpc.calls import MIN_FORWARD_S, REQUEST_ID_KEY
from taskmesh.rpc.client import DEFAULT_TIMEOUT_S
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

#: Readiness probes must answer fast, or the probe itself becomes the outage.
HEALTH_TIMEOUT_S = 1.0
#: Submissions per CreateTasks call at most (services.tasks.transport.servicer.MAX_CREATE
#: takes more): a burst of 64 clients leaves in one or two calls.
MAX_BATCH = 128
#: Seconds at most a CreateTasks batch that follows a batch of several waits for the
#: submissions of that batch's clients to come back (``Coalescer``'s ``linger_s``): without
#: it the faster the hops behind the gateway answer, the fewer clients are back when the
#: next batch leaves, and every submission pays a larger share of the call and of Tasks'
#: transaction (issue #12). A lone submission never waits.
LINGER_S = 0.002

_ORDER_BY = {
    "createdAt": tasks_pb2.TASK_ORDER_BY_CREATE_TIME,
    "dueDate": tasks_pb2.TASK_ORDER_BY_DUE_TIME,
    "priorityScore": tasks_pb2.TASK_ORDER_BY_PRIORITY_SCORE,
}
_DIRECTION = {"asc": tasks_pb2.ORDER_DIRECTION_ASC, "desc": tasks_pb2.ORDER_DIRECTION_DESC}


class User:
    """The caller of one ``/api/v1`` request, known by its API key (``key``) until the
    Tasks service has checked it; ``id`` and ``name`` are "" until then.

    The key travels with the first Tasks call made for the request
    (``taskmesh.rpc.caller``): Tasks checks it and takes the rate token in that call
    and names the user in its answer, so a request costs one hop, not two (issue
    #12). ``presented`` tells whether a call has carried the key."""

    __slots__ = ("id", "key", "name", "presented")

    def __init__(self, key: str) -> None:
        self.key = key
        self.id = ""
        self.name = ""
        self.presented = False


_acting_for: contextvars.ContextVar[User | None] = contextvars.ContextVar(
    "gateway_caller", default=None
)


@contextmanager
def acting_for(user: User) -> Iterator[None]:
    """Makes the Tasks calls of this block calls on behalf of ``user``: the first
    carries the key, the later ones the user's id."""
    token = _acting_for.set(user)
    try:
        yield
    finally:
        _acting_for.reset(token)


def _metadata(request_id: str) -> Sequence[tuple[str, str]]:
    user = _acting_for.get()
    if user is None or user.id:
        return ((REQUEST_ID_KEY, request_id),)
    user.presented = True
    return ((REQUEST_ID_KEY, request_id), (API_KEY_KEY, user.key))


async def _answer(call: Any) -> Any:
    """The response of ``call``; the user it was made for learns its id from it."""
    response = await call
    user = _acting_for.get()
    if user is not None and not user.id:
        named = user_of(await call.initial_metadata())
        if named is not None:
            user.id, user.name = named
    return response


class _Submission:
    """One ``create_task`` waiting for its batch: the CreateTasks item and the
    monotonic time its deadline ends."""

    __slots__ = ("deadline", "item")

    def __init__(self, item: tasks_pb2.CreateTasksItem, deadline: float) -> None:
        self.item = item
        self.deadline = deadline


class TasksClient:
    """``taskmesh.tasks.v1.TasksService`` for the HTTP routes, over a channel made by
    ``taskmesh.rpc.client.channel(..., token=...)``; ``timeout_s`` is its default
    deadline (GRPC_CALL_TIMEOUT_S), seconds. Inside ``acting_for(user)`` a ``user_id``
    of "" means that user, named by Tasks.

    Submissions made at the same time leave together in one CreateTasks call
    (``taskmesh.batching.Coalescer``: a lone one at once, the others as soon as the
    batch before them returns), each answered exactly as its own CreateTask would be
    (issue #12: the hop's fixed cost is paid once per batch)."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)
        self._timeout_s = timeout_s
        self._submissions: Coalescer[_Submission, tasks_pb2.CreateTasksResult] = Coalescer(
            self._create_tasks, max_batch=MAX_BATCH, linger_s=LINGER_S
        )

    @property
    def waiting_submissions(self) -> int:
        """Submissions waiting for the CreateTasks call in flight to return."""
        return self._submissions.queued

    async def authenticate(self, user: User, *, request_id: str) -> None:
        """Checks ``user``'s key with its own call (Authenticate: one rate token), for a
        request that fails before any call could carry it. Raises Unauthenticated or
        ResourceExhausted."""
        user.presented = True
        response = await self._stub.Authenticate(
            tasks_pb2.AuthenticateRequest(api_key=user.key),
            metadata=((REQUEST_ID_KEY, request_id),),
        )
        user.id, user.name = response.user_id, response.user_name

    async def create_task(
        self, user_id: str, text: str, idempotency_key: str | None, *, request_id: str
    ) -> tasks_pb2.Job:
        """The accepted job (CreateTask's, through a CreateTasks batch). Raises the
        domain error CreateTask would: Unauthenticated, ResourceExhausted (RATE_LIMITED,
        TOKEN_BUDGET_EXHAUSTED), InvalidInput, IdempotencyConflict,
        IdempotencyKeyInFlight, Unavailable."""
        user = _acting_for.get()
        key = ""
        if user is not None and not user.id:
            user.presented = True
            key = user.key
        item = tasks_pb2.CreateTasksItem(
            request=tasks_pb2.CreateTaskRequest(
                user_id=user_id, natural_language=text, idempotency_key=idempotency_key or ""
            ),
            api_key=key,
            request_id=request_id,
        )
        # Only when tracing is on: handing the constructor even an empty dict for the map
        # field goes through MutableMapping.update, about 3 % of the gateway's CPU per request.
        if carrier := tracing.trace_context():
            item.trace_context.update(carrier)
        result = await self._submissions.submit(
            _Submission(item, time.monotonic() + self._timeout_s)
        )
        if result.HasField("error"):
            raise status.from_status(result.error)
        if user is not None and not user.id and result.user_id:
            user.id, user.name = result.user_id, result.user_name
        job: tasks_pb2.Job = result.response.job
        return job

    async def _create_tasks(
        self, submissions: list[_Submission]
    ) -> list[tasks_pb2.CreateTasksResult]:
        """One CreateTasks call for ``submissions``: each item carries what is left of its
        own deadline, the call the latest of them."""
        now = time.monotonic()
        left = [max(MIN_FORWARD_S, s.deadline - now) for s in submissions]
        for submission, seconds in zip(submissions, left, strict=True):
            submission.item.timeout.FromNanoseconds(int(seconds * 1e9))
        # The call is a span of the first submission's trace (a lone one's own); each item
        # carries its own trace context further.
        # A lone submission's call carries its request id, as its CreateTask did; in a
        # batch each item names its own (the Tasks log names them if the call fails).
        lone = submissions[0].item.request_id if len(submissions) == 1 else ""
        with tracing.continued(submissions[0].item.trace_context):
            response = await self._stub.CreateTasks(
                tasks_pb2.CreateTasksRequest(items=[s.item for s in submissions]),
                timeout=max(left),
                metadata=((REQUEST_ID_KEY, lone),) if lone else (),
            )
        return list(response.results)

    async def get_job(self, user_id: str, job_id: str, *, request_id: str) -> tasks_pb2.Job:
        response = await _answer(
            self._stub.GetJob(
                tasks_pb2.GetJobRequest(user_id=user_id, job_id=job_id),
                metadata=_metadata(request_id),
            )
        )
        job: tasks_pb2.Job = response.job
        return job

    async def list_jobs(
        self, user_id: str, *, state: tasks_pb2.JobState, skip: int, take: int, request_id: str
    ) -> tasks_pb2.ListJobsResponse:
        """The user's jobs, newest first; ``state`` a ``tasks_pb2.JobState`` (0: any)."""
        response: tasks_pb2.ListJobsResponse = await _answer(
            self._stub.ListJobs(
                tasks_pb2.ListJobsRequest(user_id=user_id, state=state, skip=skip, take=take),
                metadata=_metadata(request_id),
            )
        )
        return response

    async def cancel_job(self, user_id: str, job_id: str, *, request_id: str) -> tasks_pb2.Job:
        """Cancels the user's job; FailedPrecondition if terminal, NotFound if not theirs."""
        response = await _answer(
            self._stub.CancelJob(
                tasks_pb2.CancelJobRequest(user_id=user_id, job_id=job_id),
                metadata=_metadata(request_id),
            )
        )
        job: tasks_pb2.Job = response.job
        return job

    async def watch_job(
        self, user_id: str, job_id: str, *, request_id: str, timeout_s: float
    ) -> AsyncGenerator[tasks_pb2.WatchJobResponse, None]:
        """The job's state changes until it is terminal or ``timeout_s`` passes.

        Use inside ``contextlib.aclosing`` so an abandoned watch cancels its call."""
        stream = self._stub.WatchJob(
            tasks_pb2.WatchJobRequest(user_id=user_id, job_id=job_id),
            timeout=timeout_s,
            metadata=_metadata(request_id),
        )
        try:
            async for message in stream:
                yield message
        finally:
            stream.cancel()

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
        response: tasks_pb2.ListTasksResponse = await _answer(
            self._stub.ListTasks(
                tasks_pb2.ListTasksRequest(
                    user_id=user_id,
                    skip=skip,
                    take=take,
                    order_by=_ORDER_BY[order_by],
                    order_direction=_DIRECTION[order_direction],
                    category=category or "",
                    priority_level=priority_level or "",
                ),
                metadata=_metadata(request_id),
            )
        )
        return response

    async def get_task(self, user_id: str, task_id: str, *, request_id: str) -> tasks_pb2.Task:
        response = await _answer(
            self._stub.GetTask(
                tasks_pb2.GetTaskRequest(user_id=user_id, task_id=task_id),
                metadata=_metadata(request_id),
            )
        )
        task: tasks_pb2.Task = response.task
        return task

    async def get_usage(self, user_id: str, *, request_id: str) -> tasks_pb2.GetUsageResponse:
        response: tasks_pb2.GetUsageResponse = await _answer(
            self._stub.GetUsage(
                tasks_pb2.GetUsageRequest(user_id=user_id),
                metadata=_metadata(request_id),
            )
        )
        return response

    async def create_webhook(
        self, user_id: str, url: str, events: list[str], *, request_id: str
    ) -> tasks_pb2.CreateWebhookEndpointResponse:
        response: tasks_pb2.CreateWebhookEndpointResponse = await _answer(
            self._stub.CreateWebhookEndpoint(
                tasks_pb2.CreateWebhookEndpointRequest(user_id=user_id, url=url, events=events),
                metadata=_metadata(request_id),
            )
        )
        return response

    async def list_webhooks(
        self, user_id: str, *, request_id: str
    ) -> tasks_pb2.ListWebhookEndpointsResponse:
        response: tasks_pb2.ListWebhookEndpointsResponse = await _answer(
            self._stub.ListWebhookEndpoints(
                tasks_pb2.ListWebhookEndpointsRequest(user_id=user_id),
                metadata=_metadata(request_id),
            )
        )
        return response

    async def delete_webhook(self, user_id: str, endpoint_id: str, *, request_id: str) -> None:
        await _answer(
            self._stub.DeleteWebhookEndpoint(
                tasks_pb2.DeleteWebhookEndpointRequest(user_id=user_id, endpoint_id=endpoint_id),
                metadata=_metadata(request_id),
            )
        )


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
