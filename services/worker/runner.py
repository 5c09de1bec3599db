"""Runs one CapabilityJob and turns every result into a CompleteJob request
or a decision to retry."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
)
from taskmesh.capabilities.parse_task.handler import run_parse_task
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.tasks.v1 import tasks_pb2


def add_usage(a: jobs_pb2.TokenUsage, b: jobs_pb2.TokenUsage) -> jobs_pb2.TokenUsage:
    return jobs_pb2.TokenUsage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        llm_calls=a.llm_calls + b.llm_calls,
    )


def failure(
    job_id: str,
    kind: int,
    message: str,
    usage: jobs_pb2.TokenUsage,
    suggestions: list[str] = (),  # type: ignore[assignment]
) -> tasks_pb2.CompleteJobRequest:
    return tasks_pb2.CompleteJobRequest(
        job_id=job_id,
        error=tasks_pb2.JobError(type=kind, message=message, suggestions=list(suggestions)),
        usage=usage,
    )


@dataclass
class Transient:
    """The attempt failed for a reason that may pass; ``usage`` was spent on it."""

    reason: str
    usage: jobs_pb2.TokenUsage


class CapabilityRunner:
    def __init__(self, llm: openai.AsyncOpenAI, model: str, prompt_version: str = "v1") -> None:
        self.llm = llm
        self.model = model
        self.prompt_version = prompt_version

    async def run(self, job: jobs_pb2.CapabilityJob) -> tasks_pb2.CompleteJobRequest | Transient:
        prior = job.prior_usage
        if (
            job.capability != jobs_pb2.CAPABILITY_PARSE_TASK
            or job.WhichOneof("input") != "parse_task"
        ):
            return failure(
                job.job_id, tasks_pb2.JOB_ERROR_TYPE_INTERNAL, "Unknown capability.", prior
            )
        try:
            result = await run_parse_task(self.llm, self.model, job.parse_task, self.prompt_version)
        except LLMTransientError as exc:
            return Transient(f"llm: {exc}"[:200], exc.usage)
        except LLMRejectedError as exc:
            # Deterministic: retrying cannot help. A type of its own comes with the worker's
            # redesign; until then it fails as INTERNAL with the endpoint's sanitised reason.
            return failure(
                job.job_id,
                tasks_pb2.JOB_ERROR_TYPE_INTERNAL,
                f"The LLM endpoint refused the request: {exc.detail}",
                add_usage(prior, exc.usage),
            )
        except BudgetExhaustedError as exc:
            return failure(
                job.job_id,
                tasks_pb2.JOB_ERROR_TYPE_INTERNAL,
                "The token budget does not cover a further LLM call.",
                add_usage(prior, exc.usage),
            )
        except InvalidOutputError as exc:
            return failure(
                job.job_id,
                tasks_pb2.JOB_ERROR_TYPE_INVALID_OUTPUT,
                "The model's answer could not be turned into a valid task: "
                + "; ".join(exc.errors)[:300],
                add_usage(prior, exc.usage),
            )
        usage = add_usage(prior, result.usage)
        if result.vague is not None:
            return failure(
                job.job_id,
                tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT,
                result.vague.reason,
                usage,
                list(result.vague.suggestions),
            )
        assert result.output is not None
        return tasks_pb2.CompleteJobRequest(
            job_id=job.job_id, parse_task=result.output, usage=usage
        )
