"""An in-memory TasksService, served by a real grpc.aio server in the tests,
that can be told to fail the way the real one does."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from taskmesh import errors
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.rpc import status
from taskmesh.rpc.client import REQUEST_ID_KEY
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

USERS = {"key-alice-0001-test": ("user-alice", "alice"), "key-bob-0002-test": ("user-bob", "bob")}
ALICE_KEY = "key-alice-0001-test"
BOB_KEY = "key-bob-0002-test"
EPOCH = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
_TERMINAL = (tasks_pb2.JOB_STATE_SUCCEEDED, tasks_pb2.JOB_STATE_FAILED)


def ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def make_task(owner_job_id: str, n: int = 0, due: datetime | None = None) -> tasks_pb2.Task:
    task = tasks_pb2.Task(
        task_id=str(uuid.uuid4()),
        title=f"Plan Team Offsite {n}",
        category="work",
        priority=jobs_pb2.Priority(level="high", score=8, reason="Deadline next month."),
        subtasks=[
            tasks_pb2.Subtask(subtask_id=str(uuid.uuid4()), title="Book Venue", order=2),
            tasks_pb2.Subtask(subtask_id=str(uuid.uuid4()), title="Get Budget Approval", order=1),
        ],
        create_time=ts(EPOCH + timedelta(minutes=n)),
        update_time=ts(EPOCH + timedelta(minutes=n)),
        job_id=owner_job_id,
    )
    if due is not None:
        task.due_time.CopyFrom(ts(due))
    return task


class FakeTasks(tasks_pb2_grpc.TasksServiceServicer):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.request_ids: list[str | None] = []
        #: method name -> error raised on every call to it
        self.failures: dict[str, Exception] = {}
        #: CreateTask runs the job to success at once (its watch sees it finish).
        self.complete_on_create = False
        self.last_list: tasks_pb2.ListTasksRequest | None = None
        self.last_list_jobs: tasks_pb2.ListJobsRequest | None = None
        self.owners: dict[str, str] = {}
        self.history: dict[str, list[tasks_pb2.Job]] = defaultdict(list)
        self.tasks: dict[str, list[tasks_pb2.Task]] = defaultdict(list)
        self.keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.texts: list[str] = []
        self.watching = asyncio.Event()
        self.webhooks: dict[str, list[tasks_pb2.WebhookEndpoint]] = {}
        self._changed = asyncio.Condition()
        #: Items per CreateTasks call, in order.
        self.batches: list[int] = []
        #: When set, CreateTasks waits for it (a slow Tasks service), having signalled
        #: ``batch_arrived``.
        self.create_gate: asyncio.Event | None = None
        self.batch_arrived = asyncio.Event()

    # --- test controls ----------------------------------------------------------------
    def add_job(self, user_id: str) -> str:
        job_id = str(uuid.uuid4())
        self.owners[job_id] = user_id
        self.history[job_id].append(
            tasks_pb2.Job(
                job_id=job_id,
                state=tasks_pb2.JOB_STATE_QUEUED,
                create_time=ts(EPOCH),
                update_time=ts(EPOCH),
            )
        )
        return job_id

    def _next_version(self, job_id: str, state: int) -> tasks_pb2.Job:
        job = tasks_pb2.Job()
        job.CopyFrom(self.history[job_id][-1])
        job.state = state
        job.update_time.CopyFrom(ts(EPOCH + timedelta(seconds=len(self.history[job_id]))))
        return job

    async def _append(self, job_id: str, job: tasks_pb2.Job) -> None:
        self.history[job_id].append(job)
        async with self._changed:
            self._changed.notify_all()

    async def run(self, job_id: str) -> None:
        job = self._next_version(job_id, tasks_pb2.JOB_STATE_RUNNING)
        job.attempts += 1
        await self._append(job_id, job)

    async def succeed(self, job_id: str) -> tasks_pb2.Task:
        job = self._next_version(job_id, tasks_pb2.JOB_STATE_SUCCEEDED)
        task = make_task(job_id, due=EPOCH + timedelta(days=30))
        job.task.CopyFrom(task)
        self.tasks[self.owners[job_id]].append(task)
        await self._append(job_id, job)
        return task

    async def fail_vague(self, job_id: str) -> None:
        job = self._next_version(job_id, tasks_pb2.JOB_STATE_FAILED)
        job.error.CopyFrom(
            tasks_pb2.JobError(
                type=tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT,
                message="Too generic to become a task.",
                suggestions=["What should be done?", "By when?"],
            )
        )
        await self._append(job_id, job)

    async def fail(self, job_id: str, error_type: int, message: str = "It failed.") -> None:
        job = self._next_version(job_id, tasks_pb2.JOB_STATE_FAILED)
        job.error.CopyFrom(tasks_pb2.JobError(type=error_type, message=message))
        await self._append(job_id, job)

    # --- helpers ----------------------------------------------------------------------
    def _enter(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self._count(method, dict(context.invocation_metadata() or ()).get(REQUEST_ID_KEY))

    def _count(self, method: str, request_id: str | None) -> None:
        self.calls[method] += 1
        self.request_ids.append(request_id)
        if method in self.failures:
            raise self.failures[method]

    def _job(self, user_id: str, job_id: str) -> tasks_pb2.Job:
        if self.owners.get(job_id) != user_id:
            raise errors.NotFound("Job not found.")
        return self.history[job_id][-1]

    # --- TasksService -----------------------------------------------------------------
    async def check_key(self, key: str) -> tuple[str, str]:
        """The key check of the real service, counted (and failed) as Authenticate
        whether it is its own call or rides on another (taskmesh.rpc.caller)."""
        self.calls["Authenticate"] += 1
        if "Authenticate" in self.failures:
            raise self.failures["Authenticate"]
        if key not in USERS:
            raise errors.Unauthenticated("Unknown API key.")
        return USERS[key]

    async def Authenticate(self, request, context):
        self.request_ids.append(dict(context.invocation_metadata() or ()).get(REQUEST_ID_KEY))
        user_id, name = await self.check_key(request.api_key)
        return tasks_pb2.AuthenticateResponse(user_id=user_id, user_name=name)

    async def CreateTask(self, request, context):
        self._enter("CreateTask", context)
        return await self._create(request)

    async def CreateTasks(self, request, context):
        """Each item as CreateTask with its key in metadata: counted (and failed) as
        Authenticate and CreateTask, answered with its response or its status."""
        self.calls["CreateTasks"] += 1
        if "CreateTasks" in self.failures:
            raise self.failures["CreateTasks"]
        self.batches.append(len(request.items))
        self.batch_arrived.set()
        if self.create_gate is not None:
            await self.create_gate.wait()
        results = []
        for item in request.items:
            result = tasks_pb2.CreateTasksResult()
            try:
                single = tasks_pb2.CreateTaskRequest()
                single.CopyFrom(item.request)
                if item.api_key:
                    single.user_id, name = await self.check_key(item.api_key)
                    result.user_id, result.user_name = single.user_id, name
                self._count("CreateTask", item.request_id or None)
                result.response.CopyFrom(await self._create(single))
            except Exception as exc:  # noqa: BLE001 - the item's answer
                result.ClearField("response")
                result.error.CopyFrom(status.item_status(exc))
            results.append(result)
        return tasks_pb2.CreateTasksResponse(results=results)

    async def _create(self, request: tasks_pb2.CreateTaskRequest) -> tasks_pb2.CreateTaskResponse:
        self.texts.append(request.natural_language)
        if request.idempotency_key:
            seen = self.keys.get((request.user_id, request.idempotency_key))
            if seen is not None:
                text, job_id = seen
                if text != request.natural_language:
                    raise errors.IdempotencyConflict("Idempotency key reused.")
                return tasks_pb2.CreateTaskResponse(job=self.history[job_id][-1])
        job_id = self.add_job(request.user_id)
        created = self.history[job_id][-1]
        if request.idempotency_key:
            self.keys[(request.user_id, request.idempotency_key)] = (
                request.natural_language,
                job_id,
            )
        if self.complete_on_create:
            await self.run(job_id)
            await self.succeed(job_id)
        return tasks_pb2.CreateTaskResponse(job=created)

    async def GetJob(self, request, context):
        self._enter("GetJob", context)
        return tasks_pb2.GetJobResponse(job=self._job(request.user_id, request.job_id))

    async def CancelJob(self, request, context):
        self._enter("CancelJob", context)
        current = self._job(request.user_id, request.job_id)
        if current.state not in (tasks_pb2.JOB_STATE_QUEUED, tasks_pb2.JOB_STATE_RUNNING):
            raise errors.FailedPrecondition("The job has already finished.")
        job = self._next_version(request.job_id, tasks_pb2.JOB_STATE_CANCELLED)
        await self._append(request.job_id, job)
        return tasks_pb2.CancelJobResponse(job=job)

    async def WatchJob(self, request, context) -> AsyncIterator[tasks_pb2.WatchJobResponse]:
        self._enter("WatchJob", context)
        self._job(request.user_id, request.job_id)
        history = self.history[request.job_id]
        sent = 0
        while True:
            while sent < len(history):
                yield tasks_pb2.WatchJobResponse(job=history[sent], sequence=sent + 1)
                sent += 1
                if history[sent - 1].state in _TERMINAL:
                    return
            async with self._changed:
                self.watching.set()
                await self._changed.wait_for(lambda seen=sent: seen < len(history))

    async def ListJobs(self, request, context):
        self._enter("ListJobs", context)
        self.last_list_jobs = request
        # Jobs were added oldest first; the service lists newest first.
        mine = [
            self.history[job_id][-1]
            for job_id, owner in reversed(self.owners.items())
            if owner == request.user_id
            and request.state in (tasks_pb2.JOB_STATE_UNSPECIFIED, self.history[job_id][-1].state)
        ]
        take = request.take or 10
        page = mine[request.skip : request.skip + take]
        return tasks_pb2.ListJobsResponse(jobs=page, total_count=len(mine))

    async def ListTasks(self, request, context):
        self._enter("ListTasks", context)
        self.last_list = request
        mine = self.tasks[request.user_id]
        take = request.take or 10
        page = mine[request.skip : request.skip + take]
        return tasks_pb2.ListTasksResponse(tasks=page, total_count=len(mine))

    async def GetTask(self, request, context):
        self._enter("GetTask", context)
        for task in self.tasks[request.user_id]:
            if task.task_id == request.task_id:
                return tasks_pb2.GetTaskResponse(task=task)
        raise errors.NotFound("Task not found.")

    async def GetUsage(self, request, context):
        self._enter("GetUsage", context)
        return tasks_pb2.GetUsageResponse(
            window_start=ts(EPOCH),
            window_end=ts(EPOCH + timedelta(days=1)),
            limit=100_000,
            used=2_400,
            reserved=2_500,
            remaining=95_100,
        )

    # --- webhook endpoints (the URL rules are the real service's; tested there) ----------
    async def CreateWebhookEndpoint(self, request, context):
        self._enter("CreateWebhookEndpoint", context)
        if not request.url.lower().startswith(("http://", "https://")):
            raise errors.InvalidInput(
                "url must be an http or https URL",
                [errors.FieldViolation("url", "must be an http or https URL")],
            )
        endpoint = tasks_pb2.WebhookEndpoint(
            endpoint_id=str(uuid.uuid4()),
            url=request.url,
            events=list(request.events) or ["job.succeeded", "job.failed", "job.cancelled"],
            create_time=ts(EPOCH),
        )
        self.webhooks.setdefault(request.user_id, []).append(endpoint)
        return tasks_pb2.CreateWebhookEndpointResponse(
            endpoint=endpoint, secret="whsec_" + "A" * 43 + "="
        )

    async def ListWebhookEndpoints(self, request, context):
        self._enter("ListWebhookEndpoints", context)
        return tasks_pb2.ListWebhookEndpointsResponse(
            endpoints=self.webhooks.get(request.user_id, [])
        )

    async def DeleteWebhookEndpoint(self, request, context):
        self._enter("DeleteWebhookEndpoint", context)
        mine = self.webhooks.get(request.user_id, [])
        for endpoint in mine:
            if endpoint.endpoint_id == request.endpoint_id:
                mine.remove(endpoint)
                return tasks_pb2.DeleteWebhookEndpointResponse()
        raise errors.NotFound("Webhook endpoint not found.")
