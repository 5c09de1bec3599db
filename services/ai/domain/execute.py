"""ExecuteCapability: validate, screen, then queue (ASYNC) or run (SYNC)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

import openai

from services.ai.domain.screening import Screener, default_screener
from taskmesh import errors, metrics
from taskmesh.capabilities.parse_task.handler import ParseTaskResult, run_parse_task
from taskmesh.capabilities.parse_task.validation import validate_input
from taskmesh.jobs.v1 import jobs_pb2

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, job: jobs_pb2.CapabilityJob, timeout: float) -> None: ...


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
        """The input as it will be run, or InvalidInput / InjectionDetected. The screen's model,
        when the cheap layers cannot decide, runs in a worker thread."""
        if capability != jobs_pb2.CAPABILITY_PARSE_TASK:
            raise errors.InvalidInput(
                "unknown capability", [errors.FieldViolation("capability", "unknown capability")]
            )
        clean = validate_input(task_input)
        verdict = await self.screener.screen_async(clean.natural_language)
        if verdict.blocked:
            pattern = verdict.pattern.value if verdict.pattern else "unknown"
            metrics.injections_blocked.labels(pattern).inc()
            log.warning("input refused by injection screening", extra={"pattern": pattern})
            raise errors.InjectionDetected()
        return clean

    async def enqueue(
        self,
        *,
        job_id: str,
        user_id: str,
        capability: int,
        task_input: jobs_pb2.ParseTaskInput,
        reservation: jobs_pb2.Reservation,
        request_id: str | None,
        timeout: float,
    ) -> None:
        if not job_id or not user_id:
            raise errors.InvalidInput(
                "job_id and user_id are required for the async pattern",
                [
                    errors.FieldViolation("job_id", "required"),
                    errors.FieldViolation("user_id", "required"),
                ],
            )
        clean = await self.admit(capability, task_input)
        job = jobs_pb2.CapabilityJob(
            job_id=job_id,
            user_id=user_id,
            capability=jobs_pb2.CAPABILITY_PARSE_TASK,
            parse_task=clean,
            request_id=request_id or "",
            reservation=reservation,
        )
        job.enqueue_time.FromDatetime(datetime.now(UTC))
        await self.publisher.publish(job, timeout=timeout)

    async def run(self, capability: int, task_input: jobs_pb2.ParseTaskInput) -> ParseTaskResult:
        clean = await self.admit(capability, task_input)
        if not clean.HasField("reference_time"):
            clean.reference_time.FromDatetime(datetime.now(UTC))
        return await run_parse_task(self.llm, self.model, clean, self.prompt_version)
