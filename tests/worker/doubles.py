"""In-memory doubles of what the worker talks to: the broker channel and its
deliveries, the Tasks callback, the capability runner. They implement the
interfaces the worker uses, so the decision table runs without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiormq.exceptions import ChannelInvalidStateError

from services.worker.decisions import Crashed, Finished, Transient
from services.worker.runner import Prepared
from taskmesh import errors
from taskmesh.capabilities.errors import UsageMeter
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import job_message
from taskmesh.tasks.v1 import tasks_pb2


class FakeMessage:
    """A delivery: records ack/reject; ``dead_channel`` makes both raise as aiormq
    does after the connection dropped, and ``channel`` raise like aio-pika's."""

    def __init__(self, message: Any, dead_channel: bool = False) -> None:
        self.body = message.body
        self.headers = dict(message.headers or {})
        self.content_type = message.content_type
        self.type = message.type
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        self.dead_channel = dead_channel
        self.acked = 0
        self.rejected: list[bool] = []

    @property
    def channel(self) -> Any:
        raise ChannelInvalidStateError("channel closed")

    async def ack(self) -> None:
        if self.dead_channel:
            raise ChannelInvalidStateError("channel closed")
        self.acked += 1

    async def reject(self, requeue: bool = False) -> None:
        if self.dead_channel:
            raise ChannelInvalidStateError("channel closed")
        self.rejected.append(requeue)

    async def nack(self, requeue: bool = True) -> None:
        raise AssertionError("the worker never nacks")


@dataclass
class Published:
    routing_key: str
    message: Any


class FakeExchange:
    def __init__(self) -> None:
        self.published: list[Published] = []

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        self.published.append(Published(routing_key, message))


class FakeChannel:
    def __init__(self) -> None:
        self.default_exchange = FakeExchange()

    @property
    def published(self) -> list[Published]:
        return self.default_exchange.published


@dataclass
class FakeTasks:
    """Tasks' StartJob/CompleteJob: ``states`` per job id (QUEUED by default);
    ``unavailable`` makes both calls raise Unavailable."""

    states: dict[str, int] = field(default_factory=dict)
    unavailable: bool = False
    #: Only CompleteJob fails (Tasks went away while the LLM ran).
    complete_unavailable: bool = False
    completed: list[tasks_pb2.CompleteJobRequest] = field(default_factory=list)
    #: Every CompleteJob received, applied or not (a cancelled job's late charge).
    reports: list[tasks_pb2.CompleteJobRequest] = field(default_factory=list)

    #: Tokens each job's reservation holds (absent: ``reservation``), and the window's
    #: room for top-ups (None: unlimited).
    reserved: dict[str, int] = field(default_factory=dict)
    reservation: int = 2500
    room: int | None = None
    #: tokens_needed of every StartJob and ReserveTokens, in order.
    admissions: list[tuple[str, int]] = field(default_factory=list)

    async def start_job(
        self, job_id: str, request_id: str | None, tokens_needed: int = 0
    ) -> tasks_pb2.StartJobResponse:
        if self.unavailable:
            raise errors.Unavailable("tasks down")
        state = self.states.get(job_id, tasks_pb2.JOB_STATE_QUEUED)
        if state == tasks_pb2.JOB_STATE_UNSPECIFIED:
            raise errors.NotFound("job not found")
        job = tasks_pb2.Job(job_id=job_id, state=state)
        if state not in (tasks_pb2.JOB_STATE_QUEUED, tasks_pb2.JOB_STATE_RUNNING):
            return tasks_pb2.StartJobResponse(job=job)
        self.states[job_id] = job.state = tasks_pb2.JOB_STATE_RUNNING
        self.admissions.append(("start", tokens_needed))
        granted = self._top_up(job_id, tokens_needed)
        return tasks_pb2.StartJobResponse(
            job=job, budget_granted=granted, reserved_tokens=self.reserved[job_id]
        )

    async def reserve_tokens(self, job_id: str, tokens_needed: int, request_id: str | None) -> bool:
        if self.unavailable:
            raise errors.Unavailable("tasks down")
        self.admissions.append(("further", tokens_needed))
        if self.states.get(job_id) != tasks_pb2.JOB_STATE_RUNNING:
            return False
        return self._top_up(job_id, tokens_needed)

    def _top_up(self, job_id: str, needed: int) -> bool:
        held = self.reserved.setdefault(job_id, self.reservation)
        delta = needed - held
        if delta <= 0:
            return True
        if self.room is not None:
            if delta > self.room:
                return False
            self.room -= delta
        self.reserved[job_id] = needed
        return True

    async def check_jobs(self, job_ids: list[str]) -> dict[str, int]:
        return {i: self.states[i] for i in job_ids if i in self.states}

    async def complete_job(
        self, request: tasks_pb2.CompleteJobRequest, request_id: str | None
    ) -> tasks_pb2.CompleteJobResponse:
        if self.unavailable or self.complete_unavailable:
            raise errors.Unavailable("tasks down")
        state = self.states.get(request.job_id)
        applied = state not in (
            tasks_pb2.JOB_STATE_SUCCEEDED,
            tasks_pb2.JOB_STATE_FAILED,
            tasks_pb2.JOB_STATE_CANCELLED,
        )
        self.reports.append(request)
        if applied:
            self.completed.append(request)
            state = (
                tasks_pb2.JOB_STATE_FAILED
                if request.HasField("error")
                else tasks_pb2.JOB_STATE_SUCCEEDED
            )
            self.states[request.job_id] = state
        return tasks_pb2.CompleteJobResponse(
            job=tasks_pb2.Job(job_id=request.job_id, state=state), applied=applied
        )


Script = Callable[[jobs_pb2.CapabilityJob], Any]


class FakeRunner:
    """Runs ``script(job)``: an outcome, or an exception to raise. ``gate``, when
    given, holds every run until the test sets it."""

    def __init__(self, script: Script, gate: asyncio.Event | None = None) -> None:
        self.script = script
        self.gate = gate
        self.runs: list[str] = []
        self.running = 0
        #: Input tokens each run records in the caller's meter before anything else.
        self.spend = 0
        #: The bound prepare answers (the first calls' bound StartJob admits).
        self.bound = 1000
        #: The guard each run was given.
        self.guards: list[Any] = []

    def prepare(self, job: jobs_pb2.CapabilityJob) -> Prepared:
        return Prepared(self.bound)

    async def run(
        self,
        job: jobs_pb2.CapabilityJob,
        meter: UsageMeter | None = None,
        guard: Any = None,
        prepared: Prepared | None = None,
    ) -> Finished | Transient | Crashed:
        self.runs.append(job.job_id)
        self.guards.append(guard)
        if meter is not None and self.spend:
            meter.record("core", self.spend, 0)
        self.running += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            result = self.script(job)
            if isinstance(result, BaseException):
                raise result
            return result
        finally:
            self.running -= 1


def usage(tokens: int, calls: int = 1) -> jobs_pb2.TokenUsage:
    return jobs_pb2.TokenUsage(input_tokens=tokens, output_tokens=0, llm_calls=calls)


def a_job(
    job_id: str = "job-1", prior: jobs_pb2.TokenUsage | None = None
) -> jobs_pb2.CapabilityJob:
    job = jobs_pb2.CapabilityJob(job_id=job_id, user_id="user-1", request_id="req-1")
    job.capability = jobs_pb2.CAPABILITY_PARSE_TASK
    job.parse_task.natural_language = "Pay the water bill tomorrow"
    if prior is not None:
        job.prior_usage.CopyFrom(prior)
    return job


def delivery_of(job: jobs_pb2.CapabilityJob, **kwargs: Any) -> FakeMessage:
    dead = kwargs.pop("dead_channel", False)
    return FakeMessage(job_message(job, **kwargs), dead_channel=dead)


def succeeded(job: jobs_pb2.CapabilityJob, tokens: int = 100) -> Finished:
    request = tasks_pb2.CompleteJobRequest(job_id=job.job_id, usage=usage(tokens))
    request.parse_task.title = "Pay water bill"
    return Finished(request)
