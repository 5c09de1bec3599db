"""ExecuteCapability: validate, screen, then queue (ASYNC) or run (SYNC); ExecuteCapabilities
queues many jobs with one screen call and one wait for their broker confirms."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import openai
from google.protobuf.timestamp_pb2 import Timestamp

from services.ai.domain.screening import Screener, default_screener
from taskmesh import errors, metrics, tracing
from taskmesh.capabilities.parse_task.handler import ParseTaskResult, run_parse_task
from taskmesh.capabilities.parse_task.validation import MAX_TEXT_CHARS, validate_input
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.logs import bind

log = logging.getLogger(__name__)

#: The span a batch's item is published under, in its caller's trace (``Enqueue.trace_context``).
ITEM_SPAN = "taskmesh.ai.v1.AiService/ExecuteCapabilities item"


class Publisher(Protocol):
    async def publish(self, job: jobs_pb2.CapabilityJob, timeout: float) -> None:
        """Returns once the broker confirmed ``job``; raises ``errors.Unavailable`` when it
        did not within ``timeout`` seconds (nack, returned, connection lost)."""
        ...


@runtime_checkable
class BatchPublisher(Publisher, Protocol):
    """A :class:`Publisher` that can also publish several jobs together (one socket write,
    one wait for their confirms): ``messaging.publisher.JobPublisher``."""

    async def publish_many(
        self, jobs: Sequence[jobs_pb2.CapabilityJob], timeout: float
    ) -> list[errors.Unavailable | None]:
        """``publish`` of each job, together (one write, one wait for the confirms): per
        job, in order, None once confirmed or the Unavailable ``publish`` would raise."""
        ...


@dataclass(frozen=True, slots=True)
class Enqueue:
    """One job to queue (the ASYNC pattern): what the Tasks service sent for it.

    ``request_id`` goes on the queued message and on every log line about the job (SPEC §12);
    ``trace_context`` is its caller's W3C trace context (``tracing.trace_context``), empty when
    the job is queued in its caller's own call (or tracing is off)."""

    job_id: str
    user_id: str
    capability: int
    task_input: jobs_pb2.ParseTaskInput
    reservation: jobs_pb2.Reservation
    request_id: str | None = None
    trace_context: Mapping[str, str] = field(default_factory=dict)


class CapabilityExecutor:
    def __init__(
        self,
        publisher: Publisher,
        llm: openai.AsyncOpenAI,
        model: str,
        prompt_version: str = "v1",
        screener: Screener | None = None,
    ) -> None:
        """`screener`: the loaded injection screen; the process-wide one when omitted."""
        self.screener = screener if screener is not None else default_screener()
        self.publisher = publisher
        self.llm = llm
        self.model = model
        self.prompt_version = prompt_version

    async def admit(
        self, capability: int, task_input: jobs_pb2.ParseTaskInput
    ) -> jobs_pb2.ParseTaskInput:
        """The input as it will be run, or InvalidInput / InjectionDetected (an attack is
        refused as one before any rule but the length bound is checked). The screen's model,
        when the cheap layers cannot decide, runs in a worker thread."""
        (outcome,) = await self.admit_many([(capability, task_input)])
        if isinstance(outcome, errors.InvalidInput):
            raise _answer(outcome)
        return outcome

    async def admit_many(
        self, inputs: Sequence[tuple[int, jobs_pb2.ParseTaskInput]]
    ) -> list[jobs_pb2.ParseTaskInput | errors.InvalidInput]:
        """``admit`` of each (capability, input), in order: the input as it will be run or
        the error ``admit`` would raise for it. The screen's model scores every input that
        needs it in one worker-thread call (the verdicts are those of one call per input).
        Pass each error through ``_answer`` (it logs a screened input's refusal)."""
        outcomes: list[jobs_pb2.ParseTaskInput | errors.InvalidInput | None] = [None] * len(inputs)
        screened: list[int] = []
        for i, (capability, task_input) in enumerate(inputs):
            if capability != jobs_pb2.CAPABILITY_PARSE_TASK:
                outcomes[i] = errors.InvalidInput(
                    "unknown capability",
                    [errors.FieldViolation("capability", "unknown capability")],
                )
            # The length bound first (it bounds the screen's cost), then the screen, then the
            # other input rules: an attack disguised with control characters ("ig\bnore") is
            # refused as an attack, never with a rule that names the trick (issue 13); the
            # screen drops them.
            elif len(task_input.natural_language.strip()) <= MAX_TEXT_CHARS:
                screened.append(i)
        verdicts = await self.screener.screen_many_async(
            [inputs[i][1].natural_language.strip() for i in screened]
        )
        for i, verdict in zip(screened, verdicts, strict=True):
            if verdict.blocked:
                pattern = verdict.pattern.value if verdict.pattern else "unknown"
                metrics.labelled(metrics.injections_blocked, pattern).inc()
                outcomes[i] = _Refused(pattern)
        admitted: list[jobs_pb2.ParseTaskInput | errors.InvalidInput] = []
        for outcome, (_, task_input) in zip(outcomes, inputs, strict=True):
            if outcome is None:
                try:
                    outcome = validate_input(task_input)
                except errors.InvalidInput as exc:
                    outcome = exc
            admitted.append(outcome)
        return admitted

    async def enqueue(self, item: Enqueue, timeout: float) -> None:
        """Queues one job: returns once the broker confirmed it. Raises InvalidInput or
        InjectionDetected (refused, nothing queued) or Unavailable (not confirmed within
        ``timeout`` seconds)."""
        (outcome,) = await self.enqueue_many([item], timeout)
        if outcome is not None:
            raise outcome

    async def enqueue_many(
        self, items: Sequence[Enqueue], timeout: float
    ) -> list[errors.TaskmeshError | None]:
        """Queues each job as ``enqueue`` would, together: one screen call for all inputs,
        then every accepted job published at once and their broker confirms awaited together
        (at most ``timeout`` seconds). Returns one entry per item, in order: None when the
        broker confirmed it, else the error ``enqueue`` would raise for it (a job not
        confirmed in time fails alone, with Unavailable). Each item's log lines carry its
        request id and job id (SPEC §12)."""
        outcomes: list[errors.TaskmeshError | None] = [None] * len(items)
        checked: list[int] = []
        for i, item in enumerate(items):
            if not item.job_id or not item.user_id:
                outcomes[i] = errors.InvalidInput(
                    "job_id and user_id are required for the async pattern",
                    [
                        errors.FieldViolation("job_id", "required"),
                        errors.FieldViolation("user_id", "required"),
                    ],
                )
            else:
                checked.append(i)
        admitted = await self.admit_many(
            [(items[i].capability, items[i].task_input) for i in checked]
        )
        # The batch's one enqueue time, converted once (FromDatetime per job cost more
        # than building the job).
        enqueued = Timestamp()
        enqueued.FromDatetime(datetime.now(UTC))
        publishing: list[tuple[int, jobs_pb2.CapabilityJob]] = []
        for i, clean in zip(checked, admitted, strict=True):
            item = items[i]
            if isinstance(clean, errors.InvalidInput):
                with bind(request_id=item.request_id, job_id=item.job_id):
                    outcomes[i] = _answer(clean)
                continue
            job = jobs_pb2.CapabilityJob(
                job_id=item.job_id,
                user_id=item.user_id,
                capability=jobs_pb2.CAPABILITY_PARSE_TASK,
                parse_task=clean,
                request_id=item.request_id or "",
                reservation=item.reservation,
                enqueue_time=enqueued,
            )
            publishing.append((i, job))
        if len(publishing) == 1:
            # Alone (the unary call, a lone dispatch): no task to gather.
            i, job = publishing[0]
            outcomes[i] = await self._publish(items[i], job, timeout)
        elif isinstance(self.publisher, BatchPublisher) and not any(
            items[i].trace_context for i, _ in publishing
        ):
            # One write for every message, one wait for their confirms. Items carrying a
            # trace are published one by one below, each under its own span.
            published_many = await self.publisher.publish_many(
                [job for _, job in publishing], timeout
            )
            for (i, _), outcome in zip(publishing, published_many, strict=True):
                outcomes[i] = outcome
        elif publishing:
            # Every message's frames go out before the first confirm is awaited: the confirms
            # of the batch arrive together (one wait), not one round trip after another.
            published = await asyncio.gather(
                *(self._publish(items[i], job, timeout) for i, job in publishing)
            )
            for (i, _), outcome in zip(publishing, published, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _publish(
        self, item: Enqueue, job: jobs_pb2.CapabilityJob, timeout: float
    ) -> errors.Unavailable | None:
        with (
            bind(request_id=item.request_id, job_id=item.job_id),
            tracing.continued(item.trace_context, ITEM_SPAN),
        ):
            try:
                await self.publisher.publish(job, timeout=timeout)
            except errors.Unavailable as exc:
                return exc
        return None

    async def run(self, capability: int, task_input: jobs_pb2.ParseTaskInput) -> ParseTaskResult:
        clean = await self.admit(capability, task_input)
        if not clean.HasField("reference_time"):
            clean.reference_time.FromDatetime(datetime.now(UTC))
        return await run_parse_task(self.llm, self.model, clean, self.prompt_version)


class _Refused(errors.InjectionDetected):
    """An input the screen refused, with the family it matched (logged, never answered)."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern


def _answer(refusal: errors.InvalidInput) -> errors.InvalidInput:
    """What the caller hears for a refused input; a screened attack's family is logged here
    (in the caller's logging context: the item's request and job ids) and never answered."""
    if isinstance(refusal, _Refused):
        log.warning("input refused by injection screening", extra={"pattern": refusal.pattern})
        return errors.InjectionDetected()
    return refusal
