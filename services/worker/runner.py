"""Runs one CapabilityJob's capability and turns whatever happens into an
outcome of decisions.py: Finished, Transient or Crashed. Never raises (but
for cancellation): a defect in the capability's code is an outcome too."""

from __future__ import annotations

import asyncio
import logging

import openai

from services.worker.decisions import Crashed, Finished, Transient, failure
from taskmesh.capabilities.parse_task.handler import (
    InvalidOutputError,
    LLMTransientError,
    run_parse_task,
)
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)


def add_usage(a: jobs_pb2.TokenUsage, b: jobs_pb2.TokenUsage) -> jobs_pb2.TokenUsage:
    return jobs_pb2.TokenUsage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        llm_calls=a.llm_calls + b.llm_calls,
    )


class CapabilityRunner:
    def __init__(self, llm: openai.AsyncOpenAI, model: str, prompt_version: str = "v1") -> None:
        self.llm = llm
        self.model = model
        self.prompt_version = prompt_version

    async def run(self, job: jobs_pb2.CapabilityJob) -> Finished | Transient | Crashed:
        """One attempt. Usage in every outcome = the job's prior usage + this attempt's."""
        prior = job.prior_usage
        if (
            job.capability != jobs_pb2.CAPABILITY_PARSE_TASK
            or job.WhichOneof("input") != "parse_task"
        ):
            return Finished(
                failure(job.job_id, tasks_pb2.JOB_ERROR_TYPE_INTERNAL, "Unknown capability.", prior)
            )
        try:
            result = await run_parse_task(self.llm, self.model, job.parse_task, self.prompt_version)
        except asyncio.CancelledError:
            raise
        except LLMTransientError as exc:
            retry_after = getattr(exc, "retry_after_s", None)
            return Transient(
                f"llm: {exc}"[:200],
                add_usage(prior, exc.usage),
                retry_after if isinstance(retry_after, int | float) else None,
            )
        except InvalidOutputError as exc:
            return Finished(
                failure(
                    job.job_id,
                    tasks_pb2.JOB_ERROR_TYPE_INVALID_OUTPUT,
                    "The model's answer could not be turned into a valid task.",
                    add_usage(prior, exc.usage),
                )
            )
        except Exception as exc:  # noqa: BLE001 - a defect ends the job, it never loops
            log.exception("capability raised", extra={"error": type(exc).__name__})
            spent = getattr(exc, "usage", None)
            usage = add_usage(prior, spent) if isinstance(spent, jobs_pb2.TokenUsage) else prior
            return Crashed(usage, type(exc).__name__)
        usage = add_usage(prior, result.usage)
        if result.vague is not None:
            return Finished(
                failure(
                    job.job_id,
                    tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT,
                    result.vague.reason,
                    usage,
                    list(result.vague.suggestions),
                )
            )
        assert result.output is not None
        return Finished(
            tasks_pb2.CompleteJobRequest(job_id=job.job_id, parse_task=result.output, usage=usage)
        )
