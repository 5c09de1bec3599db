"""taskmesh.tasks.v1.TasksService: protobuf in, domain calls, protobuf out.

Domain errors raised below are turned into status codes by the server's
ObserveInterceptor (taskmesh.rpc.server)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2

from services.tasks.domain import models as m
from services.tasks.domain.jobs import CompleteItem, JobService, StartItem, Submission
from services.tasks.domain.queries import JobQueries
from services.tasks.domain.users import UserService
from services.tasks.domain.webhooks import WebhookService
from services.tasks.transport import convert
from taskmesh import errors, metrics
from taskmesh.ids import is_uuid
from taskmesh.logs import bind, request_id_var
from taskmesh.rpc import status
from taskmesh.rpc.client import remaining, valid_request_id
from taskmesh.rpc.status import item_status
from taskmesh.settings import default
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

log = logging.getLogger(__name__)

_ORDER = {
    tasks_pb2.TASK_ORDER_BY_UNSPECIFIED: m.TaskOrder.CREATED_AT,
    tasks_pb2.TASK_ORDER_BY_CREATE_TIME: m.TaskOrder.CREATED_AT,
    tasks_pb2.TASK_ORDER_BY_DUE_TIME: m.TaskOrder.DUE_AT,
    tasks_pb2.TASK_ORDER_BY_PRIORITY_SCORE: m.TaskOrder.PRIORITY_SCORE,
}
MAX_TAKE = 100
#: Job ids per CheckJobs call: a worker's whole prefetch fits (WORKER_CONCURRENCY ≤ 10,000).
MAX_CHECK = 10_000
#: Items per CreateTasks / StartJobs / CompleteJobs call: far more than the gateway's or a
#: worker's batches (gateway.clients.MAX_BATCH, the Coalescer's max_batch), far less than the
#: message size limit allows; it bounds one transaction.
MAX_BATCH = 1_000

ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")
#: StartJobsResult / CompleteJobsResult: a oneof of ``response`` and ``error``.
ResultT = TypeVar("ResultT", tasks_pb2.StartJobsResult, tasks_pb2.CompleteJobsResult)
#: Default deadline for the AI hop when the caller set none.


def _page_size(request: tasks_pb2.ListJobsRequest | tasks_pb2.ListTasksRequest) -> int:
    """``take`` of a paged request (0 means the default, 10); raises InvalidInput naming
    each field out of its range: ``take`` outside 1-MAX_TAKE, ``skip`` below 0 (SPEC §5)."""
    take: int = request.take or 10
    violations = []
    if not 1 <= take <= MAX_TAKE:
        violations.append(errors.FieldViolation("take", f"must be 1-{MAX_TAKE}"))
    if request.skip < 0:
        violations.append(errors.FieldViolation("skip", "must be at least 0"))
    if violations:
        names = " and ".join(v.field for v in violations)
        raise errors.InvalidInput(f"invalid page: {names} out of range", violations)
    return take


def _require_scope(
    request: tasks_pb2.ListJobsRequest | tasks_pb2.CancelJobRequest,
) -> str | None:
    """One user's (``user_id``, returned as :func:`_user_id` gives it) or, for operators,
    every user's (``all_users``: None) — exactly one of them: an empty user_id must never
    silently mean "everyone"."""
    if request.all_users and request.user_id:
        raise errors.InvalidInput(
            "give user_id or all_users, not both",
            [
                errors.FieldViolation("user_id", "not allowed with all_users"),
                errors.FieldViolation("all_users", "not allowed with user_id"),
            ],
        )
    if not request.all_users and not request.user_id:
        raise errors.InvalidInput(
            "user_id is required unless all_users is set",
            [errors.FieldViolation("user_id", "required unless all_users")],
        )
    return None if request.all_users else _user_id(request.user_id)


def _require(value: str, field: str) -> str:
    if not value:
        raise errors.InvalidInput(
            f"{field} is required", [errors.FieldViolation(field, "required")]
        )
    return value


def _user_id(value: str) -> str:
    """The ``user_id`` a request acts for, lowercased as ids are stored. Every user id is
    a UUID, so anything else is the caller's mistake (InvalidInput naming ``user_id``), not
    a user with nothing to list."""
    if not is_uuid(_require(value, "user_id")):
        raise errors.InvalidInput(
            "user_id must be a UUID", [errors.FieldViolation("user_id", "must be a UUID")]
        )
    return value.lower()


def _submission(
    request: tasks_pb2.CreateTaskRequest,
    user_id: str,
    request_id: str | None,
    timeout: float,
    trace_context: Mapping[str, str] | None = None,
) -> Submission:
    """What CreateTask and each CreateTasks item accept: the text stripped, an empty
    Idempotency-Key none; ``trace_context`` a CreateTasks item's own (None: the call's)."""
    return Submission(
        user_id,
        request.natural_language.strip(),
        request.idempotency_key or None,
        request_id,
        timeout,
        dict(trace_context) if trace_context is not None else {},
    )


def _tokens(value: int) -> int:
    if value < 0:
        raise errors.InvalidInput(
            "tokens_needed must not be negative",
            [errors.FieldViolation("tokens_needed", "negative")],
        )
    return value


def _start_item(request: tasks_pb2.StartJobRequest, request_id: str | None) -> StartItem:
    """A StartJob request as the domain takes it. Raises InvalidInput (no job id, negative
    tokens)."""
    job_id = _require(request.job_id, "job_id")
    return StartItem(job_id, _tokens(request.tokens_needed), request_id)


def _start_response(job: m.Job, admission: m.Admission) -> tasks_pb2.StartJobResponse:
    return tasks_pb2.StartJobResponse(
        job=convert.job_to_proto(job),
        budget_granted=admission.granted,
        reserved_tokens=admission.reserved,
    )


def _complete_item(request: tasks_pb2.CompleteJobRequest, request_id: str | None) -> CompleteItem:
    """A CompleteJob request as the domain takes it. Raises InvalidInput (no job id, no
    outcome, negative usage)."""
    job_id = _require(request.job_id, "job_id")
    kind = request.WhichOneof("outcome")
    if kind == "parse_task":
        outcome: m.TaskDraft | m.JobError = convert.draft_from_proto(request.parse_task)
    elif kind == "error":
        outcome = convert.error_from_proto(request.error)
    else:
        raise errors.InvalidInput(
            "an outcome is required", [errors.FieldViolation("outcome", "required")]
        )
    actual = request.usage.input_tokens + request.usage.output_tokens
    if actual < 0:
        raise errors.InvalidInput("usage must not be negative")
    calls = [
        m.CallUsage(c.operation, c.input_tokens, c.output_tokens, c.estimated)
        for c in request.calls
    ]
    if any(c.input_tokens < 0 or c.output_tokens < 0 for c in calls):
        raise errors.InvalidInput("usage must not be negative")
    return CompleteItem(job_id, outcome, actual, calls, request_id)


def _complete_response(job: m.Job, applied: bool) -> tasks_pb2.CompleteJobResponse:
    return tasks_pb2.CompleteJobResponse(job=convert.job_to_proto(job), applied=applied)


def _count_item(rpc: str, result: Any) -> str:
    """Counts one answered batch item (a ``*Result`` with an optional ``error``) in
    ``grpc_server_batch_items_total`` under the unary method ``rpc``; returns its code name."""
    code = status.code_name(result.error) if result.HasField("error") else "OK"
    metrics.labelled(metrics.grpc_batch_items, SERVICE_NAME, rpc, code).inc()
    return code


def _item_status(exc: Exception) -> status_pb2.Status:
    """The status a unary call would fail with for ``exc`` (the server interceptor's
    mapping, ``taskmesh.rpc.server``): a domain error's own, a bare INTERNAL for any other,
    which is logged here as the interceptor logs it."""
    if not isinstance(exc, errors.TaskmeshError):
        log.error("unhandled error in a batch item", exc_info=exc)
    return item_status(exc)


async def _itemwise(
    rpc: str,
    items: Sequence[Any],
    parse: Callable[[Any, str | None], ItemT],
    run: Callable[[list[ItemT]], Awaitable[list[OutT | Exception]]],
    respond: Callable[[OutT], Message],
    result: Callable[..., ResultT],
) -> list[ResultT]:
    """A batch RPC item by item: each item (``request``: the unary request, ``request_id``)
    parsed, the valid ones run together (``run``: one domain call, one transaction), each
    answered as ``result(response=…)`` with its unary response or ``result(error=…)``
    with its google.rpc.Status, in the items' order. One log line per item with its request and
    job ids (SPEC §12), as the unary call's "rpc" line, and counted in
    ``grpc_server_batch_items_total`` under the unary method. Raises InvalidInput for more than
    MAX_BATCH items."""
    if len(items) > MAX_BATCH:
        raise errors.InvalidInput(
            f"at most {MAX_BATCH} items", [errors.FieldViolation("items", "too many")]
        )
    answers: list[ResultT | None] = [None] * len(items)
    valid: list[tuple[int, ItemT]] = []
    for index, item in enumerate(items):
        try:
            valid.append((index, parse(item.request, item.request_id or None)))
        except errors.TaskmeshError as exc:
            answers[index] = result(error=_item_status(exc))
    if valid:
        outcomes = await run([parsed for _, parsed in valid])
        for (index, _), outcome in zip(valid, outcomes, strict=True):
            answers[index] = (
                result(error=_item_status(outcome))
                if isinstance(outcome, Exception)
                else result(response=respond(outcome))
            )
    done: list[ResultT] = []
    for item, answer in zip(items, answers, strict=True):
        assert answer is not None
        code = _count_item(rpc, answer)
        # The ids as the line's own fields, which the log filter (taskmesh.logs) keeps
        # over the call's context: what ``bind`` around the line writes, without setting
        # and resetting two context variables per item for a line usually filtered out.
        log.info(
            "rpc item",
            extra={
                "rpc": rpc,
                "code": code,
                "request_id": item.request_id or None,
                "job_id": item.request.job_id or None,
            },
        )
        done.append(answer)
    return done


class TasksServicer(tasks_pb2_grpc.TasksServiceServicer):
    """``CreateTask`` waits at most ``dispatch_timeout_s`` (TASKS_DISPATCH_TIMEOUT_S) for
    the AI service to accept the job, less when the caller's deadline is nearer."""

    def __init__(
        self,
        jobs: JobService,
        users: UserService,
        webhooks: WebhookService | None = None,
        queries: JobQueries | None = None,
        *,
        dispatch_timeout_s: float = default("tasks_dispatch_timeout_s"),
    ) -> None:
        self.dispatch_timeout_s = dispatch_timeout_s
        self.jobs = jobs
        self.users = users
        self.webhooks = webhooks or WebhookService(jobs.store)
        self.queries = queries or JobQueries(
            jobs.store, jobs.policy.budget, jobs.events, clock=jobs.now
        )

    async def Authenticate(  # noqa: N802 - gRPC names
        self,
        request: tasks_pb2.AuthenticateRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.AuthenticateResponse:
        user = await self.users.authenticate(request.api_key)
        return tasks_pb2.AuthenticateResponse(user_id=user.id, user_name=user.name)

    async def _existing_user(self, value: str) -> str:
        """The ``user_id`` of a request that acts for an existing user (`_user_id`'s form).
        Raises InvalidInput for one that is no UUID and NotFound for one of no user."""
        user_id = _user_id(value)
        if not await self.users.existing([user_id]):
            raise errors.NotFound("user not found")
        return user_id

    async def CreateTask(  # noqa: N802
        self,
        request: tasks_pb2.CreateTaskRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CreateTaskResponse:
        user_id = await self._existing_user(request.user_id)
        submission = _submission(
            request, user_id, request_id_var.get(), remaining(context, self.dispatch_timeout_s)
        )
        job = await self.jobs.create(
            submission.user_id,
            submission.text,
            idempotency_key=submission.idempotency_key,
            request_id=submission.request_id,
            timeout=submission.timeout,
        )
        return tasks_pb2.CreateTaskResponse(job=convert.job_to_proto(job))

    async def CreateTasks(  # noqa: N802
        self,
        request: tasks_pb2.CreateTasksRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CreateTasksResponse:
        """Each item as CreateTask would take it with its key and request id in metadata:
        the keys checked (one rate token each), then the accepted items created together
        (``JobService.create_many``); each failure is that item's status."""
        items = request.items
        if len(items) > MAX_BATCH:
            raise errors.InvalidInput(
                f"at most {MAX_BATCH} items", [errors.FieldViolation("items", "too many")]
            )
        try:
            results = await self._create_tasks(items, context)
        except Exception:
            # The whole call failed: each submission's request id names it in the log,
            # as its own CreateTask's failure would have been.
            for item in items:
                if valid_request_id(item.request_id):
                    with bind(request_id=item.request_id):
                        log.warning("CreateTasks failed as a whole")
            raise
        return tasks_pb2.CreateTasksResponse(results=results)

    async def _create_tasks(
        self, items: Sequence[tasks_pb2.CreateTasksItem], context: grpc.aio.ServicerContext
    ) -> list[tasks_pb2.CreateTasksResult]:
        results = [tasks_pb2.CreateTasksResult() for _ in items]
        keyed = [i for i, item in enumerate(items) if item.api_key]
        users = dict(
            zip(
                keyed,
                await self.users.authenticate_many([items[i].api_key for i in keyed]),
                strict=True,
            )
        )
        named = [
            item.request.user_id.lower()
            for item in items
            if not item.api_key and is_uuid(item.request.user_id)
        ]
        known = await self.users.existing(named) if named else set()
        submissions: list[Submission] = []
        placed: list[int] = []
        for i, item in enumerate(items):
            try:
                user = users.get(i)
                if isinstance(user, errors.TaskmeshError):
                    raise user
                if user is not None:
                    results[i].user_id, results[i].user_name = user.id, user.name
                    user_id = user.id
                else:
                    user_id = _user_id(item.request.user_id)
                    if user_id not in known:
                        raise errors.NotFound("user not found")
                limit = self.dispatch_timeout_s
                if item.HasField("timeout"):
                    limit = min(limit, max(0.05, item.timeout.ToTimedelta().total_seconds() - 0.01))
                rid = item.request_id if valid_request_id(item.request_id) else None
                submissions.append(
                    _submission(
                        item.request, user_id, rid, remaining(context, limit), item.trace_context
                    )
                )
                placed.append(i)
            except errors.TaskmeshError as exc:
                results[i].error.CopyFrom(_item_status(exc))
        outcomes = await self.jobs.create_many(submissions)
        for i, submission, outcome in zip(placed, submissions, outcomes, strict=True):
            if isinstance(outcome, Exception):
                if not isinstance(outcome, errors.TaskmeshError):
                    with bind(request_id=submission.request_id):
                        log.error("unhandled error in CreateTasks", exc_info=outcome)
                results[i].error.CopyFrom(_item_status(outcome))
            else:
                results[i].response.job.CopyFrom(convert.job_to_proto(outcome))
        for result in results:
            _count_item("CreateTask", result)
        return results

    async def GetJob(self, request, context):  # noqa: N802
        job = await self.queries.get(_user_id(request.user_id), request.job_id)
        return tasks_pb2.GetJobResponse(job=convert.job_to_proto(job))

    async def ListJobs(  # noqa: N802
        self,
        request: tasks_pb2.ListJobsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.ListJobsResponse:
        take = _page_size(request)
        user_id = _require_scope(request)
        state = convert.state_from_proto(request.state)
        if state is None and request.state != tasks_pb2.JOB_STATE_UNSPECIFIED:
            raise errors.InvalidInput(
                "unknown state", [errors.FieldViolation("state", "a JobState value")]
            )
        query = m.JobQuery(
            user_id=user_id,
            state=state,
            skip=request.skip,
            take=take,
        )
        jobs, total = await self.queries.list_jobs(query)
        return tasks_pb2.ListJobsResponse(
            jobs=[convert.job_to_proto(j) for j in jobs], total_count=total
        )

    async def WatchJob(  # noqa: N802
        self,
        request: tasks_pb2.WatchJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[tasks_pb2.WatchJobResponse]:
        user_id = _user_id(request.user_id)
        async for job in self.queries.watch(user_id, request.job_id):
            yield tasks_pb2.WatchJobResponse(job=convert.job_to_proto(job), sequence=job.version)

    async def ListTasks(  # noqa: N802
        self,
        request: tasks_pb2.ListTasksRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.ListTasksResponse:
        take = _page_size(request)
        query = m.TaskQuery(
            user_id=_user_id(request.user_id),
            skip=request.skip,
            take=take,
            order_by=_ORDER.get(request.order_by, m.TaskOrder.CREATED_AT),
            descending=request.order_direction != tasks_pb2.ORDER_DIRECTION_ASC,
            category=request.category or None,
            priority_level=request.priority_level or None,
        )
        tasks, total = await self.queries.list_tasks(query)
        return tasks_pb2.ListTasksResponse(
            tasks=[convert.task_to_proto(t) for t in tasks], total_count=total
        )

    async def GetTask(self, request, context):  # noqa: N802
        task = await self.queries.get_task(_user_id(request.user_id), request.task_id)
        return tasks_pb2.GetTaskResponse(task=convert.task_to_proto(task))

    async def GetUsage(self, request, context):  # noqa: N802
        # An unknown user has no budget to report, not a full one.
        user_id = await self._existing_user(request.user_id)
        usage = await self.queries.usage(user_id)
        return tasks_pb2.GetUsageResponse(
            window_start=convert.ts(datetime.fromtimestamp(usage.window_start, UTC)),
            window_end=convert.ts(datetime.fromtimestamp(usage.window_end, UTC)),
            limit=usage.limit,
            used=usage.used,
            reserved=usage.reserved,
            remaining=usage.remaining,
        )

    async def CancelJob(  # noqa: N802
        self,
        request: tasks_pb2.CancelJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CancelJobResponse:
        user_id = _require_scope(request)
        with bind(job_id=request.job_id):
            job = await self.jobs.cancel(user_id, _require(request.job_id, "job_id"))
            return tasks_pb2.CancelJobResponse(job=convert.job_to_proto(job))

    async def CheckJobs(  # noqa: N802
        self,
        request: tasks_pb2.CheckJobsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CheckJobsResponse:
        if len(request.job_ids) > MAX_CHECK:
            raise errors.InvalidInput(
                f"at most {MAX_CHECK} job ids", [errors.FieldViolation("job_ids", "too many")]
            )
        states = await self.queries.states(list(request.job_ids))
        return tasks_pb2.CheckJobsResponse(
            jobs=[
                tasks_pb2.JobStateEntry(job_id=job_id, state=convert.state_to_proto(state))
                for job_id, state in states.items()
            ]
        )

    async def StartJob(  # noqa: N802
        self,
        request: tasks_pb2.StartJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.StartJobResponse:
        with bind(job_id=request.job_id):
            item = _start_item(request, None)
            return _start_response(
                *await self.jobs.start_admitting(item.job_id, item.tokens_needed)
            )

    async def StartJobs(  # noqa: N802
        self,
        request: tasks_pb2.StartJobsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.StartJobsResponse:
        results = await _itemwise(
            "StartJob",
            request.items,
            _start_item,
            self.jobs.start_many,
            lambda started: _start_response(*started),
            tasks_pb2.StartJobsResult,
        )
        return tasks_pb2.StartJobsResponse(results=results)

    async def ReserveTokens(  # noqa: N802
        self,
        request: tasks_pb2.ReserveTokensRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.ReserveTokensResponse:
        job_id = _require(request.job_id, "job_id")
        with bind(job_id=job_id):
            admission = await self.jobs.reserve_tokens(job_id, _tokens(request.tokens_needed))
            return tasks_pb2.ReserveTokensResponse(
                granted=admission.granted, reserved_tokens=admission.reserved
            )

    async def CompleteJob(  # noqa: N802
        self,
        request: tasks_pb2.CompleteJobRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CompleteJobResponse:
        with bind(job_id=request.job_id):
            item = _complete_item(request, None)
            return _complete_response(
                *await self.jobs.complete(item.job_id, item.outcome, item.actual_tokens, item.calls)
            )

    async def CompleteJobs(  # noqa: N802
        self,
        request: tasks_pb2.CompleteJobsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CompleteJobsResponse:
        results = await _itemwise(
            "CompleteJob",
            request.items,
            _complete_item,
            self.jobs.complete_many,
            lambda completed: _complete_response(*completed),
            tasks_pb2.CompleteJobsResult,
        )
        return tasks_pb2.CompleteJobsResponse(results=results)

    # --- webhook endpoints (SPEC §5) ------------------------------------------------------
    async def CreateWebhookEndpoint(  # noqa: N802
        self,
        request: tasks_pb2.CreateWebhookEndpointRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.CreateWebhookEndpointResponse:
        # An endpoint needs its user (the row's foreign key would refuse it as INTERNAL).
        user_id = await self._existing_user(request.user_id)
        endpoint, secret = await self.webhooks.register(
            user_id, _require(request.url, "url"), list(request.events)
        )
        return tasks_pb2.CreateWebhookEndpointResponse(
            endpoint=convert.webhook_endpoint_to_proto(endpoint), secret=secret
        )

    async def ListWebhookEndpoints(  # noqa: N802
        self,
        request: tasks_pb2.ListWebhookEndpointsRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.ListWebhookEndpointsResponse:
        endpoints = await self.webhooks.list(_user_id(request.user_id))
        return tasks_pb2.ListWebhookEndpointsResponse(
            endpoints=[convert.webhook_endpoint_to_proto(e) for e in endpoints]
        )

    async def DeleteWebhookEndpoint(  # noqa: N802
        self,
        request: tasks_pb2.DeleteWebhookEndpointRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.DeleteWebhookEndpointResponse:
        await self.webhooks.delete(_user_id(request.user_id), request.endpoint_id)
        return tasks_pb2.DeleteWebhookEndpointResponse()

    async def GetWebhookTarget(  # noqa: N802
        self,
        request: tasks_pb2.GetWebhookTargetRequest,
        context: grpc.aio.ServicerContext,
    ) -> tasks_pb2.GetWebhookTargetResponse:
        target = await self.webhooks.target(_require(request.endpoint_id, "endpoint_id"))
        return tasks_pb2.GetWebhookTargetResponse(
            endpoint=convert.webhook_endpoint_to_proto(target.endpoint),
            secret=target.secret,
            user_id=target.endpoint.user_id,
        )


def registrar(servicer: TasksServicer):
    def register(server: grpc.aio.Server) -> None:
        tasks_pb2_grpc.add_TasksServiceServicer_to_server(servicer, server)

    return register


SERVICE_NAME = tasks_pb2.DESCRIPTOR.services_by_name["TasksService"].full_name
