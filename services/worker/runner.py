"""Runs one CapabilityJob's capability and turns whatever happens into an
outcome of decisions.py: Finished, Transient or Crashed. Never raises (but
for cancellation): a defect in the capability's code is an outcome too.

Usage: the caller passes a UsageMeter, so what the attempt spent is known even
when the caller cancels the run (job cancelled, shutdown) or the code raised."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import openai

from services.worker.decisions import Crashed, Finished, Transient, failure
from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    CallGuard,
    CapabilityError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
    UsageMeter,
)
from taskmesh.capabilities.llm_client import call_options
from taskmesh.capabilities.parse_task.handler import (
    ParseTaskPlan,
    plan_parse_task,
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


def _spent(meter: UsageMeter, exc: BaseException | None = None) -> jobs_pb2.TokenUsage:
    """This attempt's usage: the meter's record, or the error's when it knows more."""
    metered = meter.usage()
    if isinstance(exc, CapabilityError) and exc.usage.llm_calls > metered.llm_calls:
        return exc.usage
    return metered


@dataclass(frozen=True, slots=True)
class Prepared:
    """A run worked out before it starts (:meth:`CapabilityRunner.prepare`): ``first_bound``,
    tokens its first calls may cost; ``plan``, the parse-task plan they come from (None when
    there is none to reuse)."""

    first_bound: int
    plan: ParseTaskPlan | None = None


class CapabilityRunner:
    def __init__(self, llm: openai.AsyncOpenAI, model: str, prompt_version: str = "v1") -> None:
        self.llm = llm
        self.model = model
        self.prompt_version = prompt_version

    def prepare(self, job: jobs_pb2.CapabilityJob) -> Prepared:
        """What the run of ``job`` starts from: the most its first, concurrent LLM calls can
        cost (tokens; 0 for a job this runner cannot run), which StartJob admits against the
        reservation (SPEC §8), and the prompts that bound was computed from, which
        :meth:`run` then sends. Never raises: a plan that cannot be made is made again by
        the run, which reports the defect."""
        if job.WhichOneof("input") != "parse_task":
            return Prepared(0)
        try:
            plan = plan_parse_task(job.parse_task, self.prompt_version, call_options(self.llm))
        except Exception:  # noqa: BLE001 - the run reports the defect; admit its first calls then
            log.exception("could not bound the first calls")
            return Prepared(0)
        return Prepared(plan.first_bound, plan)

    async def run(
        self,
        job: jobs_pb2.CapabilityJob,
        meter: UsageMeter | None = None,
        guard: CallGuard | None = None,
        prepared: Prepared | None = None,
    ) -> Finished | Transient | Crashed:
        """One attempt. Usage in every outcome = the job's prior usage + this attempt's.
        ``prepared``: this runner's :meth:`prepare` of ``job``, when the caller made it."""
        meter = meter if meter is not None else UsageMeter()
        prior = job.prior_usage
        if (
            job.capability != jobs_pb2.CAPABILITY_PARSE_TASK
            or job.WhichOneof("input") != "parse_task"
        ):
            return Finished(
                failure(job.job_id, tasks_pb2.JOB_ERROR_TYPE_INTERNAL, "Unknown capability.", prior)
            )
        try:
            result = await run_parse_task(
                self.llm,
                self.model,
                job.parse_task,
                self.prompt_version,
                guard=guard,
                meter=meter,
                plan=prepared.plan if prepared is not None else None,
            )
        except asyncio.CancelledError:
            raise
        except LLMTransientError as exc:
            return Transient(
                f"llm: {exc}"[:200], add_usage(prior, _spent(meter, exc)), exc.retry_after_s
            )
        except LLMRejectedError as exc:
            # Deterministic: retrying cannot help.
            return Finished(
                failure(
                    job.job_id,
                    tasks_pb2.JOB_ERROR_TYPE_LLM_REJECTED,
                    f"The LLM endpoint refused the request: {exc.detail}",
                    add_usage(prior, _spent(meter, exc)),
                )
            )
        except BudgetExhaustedError as exc:
            return Finished(
                failure(
                    job.job_id,
                    tasks_pb2.JOB_ERROR_TYPE_BUDGET_EXHAUSTED,
                    "The token budget does not cover a further LLM call.",
                    add_usage(prior, _spent(meter, exc)),
                )
            )
        except InvalidOutputError as exc:
            return Finished(
                failure(
                    job.job_id,
                    tasks_pb2.JOB_ERROR_TYPE_INVALID_OUTPUT,
                    "The model's answer could not be turned into a valid task: "
                    + "; ".join(exc.errors)[:300],
                    add_usage(prior, _spent(meter, exc)),
                )
            )
        except Exception as exc:  # noqa: BLE001 - a defect ends the job, it never loops
            log.exception("capability raised", extra={"error": type(exc).__name__})
            return Crashed(add_usage(prior, _spent(meter, exc)), type(exc).__name__)
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
