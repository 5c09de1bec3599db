"""Runs parse-task against an OpenAI-compatible endpoint: the core and subtasks calls in
parallel, the core answer checked and retried once with the errors, every call's tokens
recorded so the budget is charged for what was really spent (SPEC §8, §10).

Transient endpoint failures are raised, not retried here: the queue owns retries, with
backoff and an attempt limit, and a second retry loop here would multiply them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time

import openai
from openai.types.chat import ChatCompletionMessageParam

from taskmesh import metrics
from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    BudgetRefused,
    CallGuard,
    CapabilityError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
    UsageMeter,
)
from taskmesh.capabilities.llm_calls import CallFailed, LLMCaller, ResponseSchema, call_bound
from taskmesh.capabilities.llm_client import CallOptions, call_options
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.timestamps import utc_day

from .config import effective_config
from .dates import check_due_day
from .prompts import reference_time, render_core, render_subtasks
from .schema import (
    OutputInvalid,
    core_response_schema,
    parse_core,
    parse_subtasks,
    subtasks_response_schema,
)

log = logging.getLogger(__name__)

CORE_TEMPERATURE = 0.0
SUBTASKS_TEMPERATURE = 0.3
#: Core attempts per job run: the first answer plus one retry that sees its errors.
CORE_ATTEMPTS = 2

#: Kept for callers of the old name: every capability error carries ``usage``.
ParseTaskError = CapabilityError

__all__ = [
    "CORE_ATTEMPTS",
    "BudgetExhaustedError",
    "CapabilityError",
    "InvalidOutputError",
    "LLMRejectedError",
    "LLMTransientError",
    "ParseTaskError",
    "ParseTaskPlan",
    "ParseTaskResult",
    "run_parse_task",
]


@dataclass
class ParseTaskResult:
    output: jobs_pb2.ParseTaskOutput | None  # set on success
    vague: jobs_pb2.VagueInput | None  # set when the model judged the input vague
    usage: jobs_pb2.TokenUsage  # every call made, failed ones included
    model: str = ""  # the model and prompt version that produced it, for logs and evals
    prompt_version: str = ""


class _Truncated(OutputInvalid):
    pass


def _record(operation: str, model: str, outcome: str) -> None:
    metrics.labelled(metrics.llm_calls, operation, model, outcome).inc()


def _feedback(errors: list[str], truncated: bool = False) -> str:
    # The errors describe the answer (a failed job shows them to its client); what the model
    # must do about them is said here, to the model alone.
    listed = "\n".join(f"- {e}" for e in errors)
    again = "a shorter JSON object" if truncated else "one JSON object that follows every rule"
    return f"Your previous answer was rejected for these reasons:\n{listed}\nAnswer again with {again}."


def _truncation(max_tokens: int) -> str:
    return f"the answer was cut off at the output limit ({max_tokens} tokens)"


@dataclass
class _Run:
    caller: LLMCaller
    guard: CallGuard | None
    options: CallOptions

    async def admit(self, tokens: int) -> None:
        if self.guard is not None:
            await self.guard.admit(tokens)


def _core_messages(
    task_input: jobs_pb2.ParseTaskInput,
    config: jobs_pb2.ParseTaskConfig,
    version: str,
    now: datetime,
) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": render_core(config, now, version)},
        {"role": "user", "content": task_input.natural_language},
    ]


def _subtasks_messages(
    task_input: jobs_pb2.ParseTaskInput, version: str
) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": render_subtasks(version)},
        {"role": "user", "content": task_input.natural_language},
    ]


def _checked_core(
    content: str | None,
    config: jobs_pb2.ParseTaskConfig,
    task_input: jobs_pb2.ParseTaskInput,
    now: datetime,
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    try:
        answer = parse_core(content, config)
        if isinstance(answer, jobs_pb2.ParseTaskOutput):
            _check_due(answer, task_input, now)
        return answer
    except OutputInvalid:
        raise
    except Exception:
        # The validator is meant to be total (SPEC §10); should it still raise, the answer is
        # a failed attempt, never a crash that loops the message (issue 10.2).
        log.exception("parse-task core validation failed unexpectedly")
        raise OutputInvalid(["the answer could not be read; reply with one JSON object"]) from None


def _check_due(
    answer: jobs_pb2.ParseTaskOutput, task_input: jobs_pb2.ParseTaskInput, now: datetime
) -> None:
    """Right, not only valid (issue 14.6): the due day must be the one the sentence names,
    resolved by the prompt's own rules against ``now`` (the run's reference time, the one its
    prompt was rendered with). Corrects ``answer`` in place when the sentence names one day;
    raises OutputInvalid when it names several and the model picked none of them."""
    model_due = utc_day(answer.due_time.seconds) if answer.HasField("due_time") else None
    check = check_due_day(model_due, task_input.natural_language, now.date())
    if check.error is not None:
        raise OutputInvalid([check.error], verdict="task")
    if check.corrected:
        log.info(
            "parse-task dueDate corrected from the sentence",
            extra={
                "model_due": model_due.isoformat() if model_due else None,
                "due": check.day.isoformat() if check.day else None,
            },
        )
        if check.day is None:
            answer.ClearField("due_time")
        else:
            # Midnight UTC of the day, as the prompt asks when no time of day is given.
            answer.due_time.FromDatetime(datetime.combine(check.day, time(), tzinfo=UTC))


async def _core(
    run: _Run, plan: ParseTaskPlan, task_input: jobs_pb2.ParseTaskInput
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    """The checked core answer. Raises CallFailed, OutputInvalid or BudgetRefused (before the
    corrective call, which the first admission did not cover)."""
    caller = run.caller
    config = plan.config
    messages = plan.core_messages
    schema = plan.core_schema
    max_tokens = run.options.max_tokens_core
    errors: list[str] = []
    rejected_task = False
    for attempt in range(CORE_ATTEMPTS):
        if attempt > 0:
            await run.admit(call_bound(messages, schema, max_tokens))
        result = await caller.call("core", messages, schema, CORE_TEMPERATURE, max_tokens)
        try:
            if result.truncated:
                raise _Truncated([_truncation(max_tokens)])
            answer = _checked_core(result.content, config, task_input, plan.now)
            if rejected_task and isinstance(answer, jobs_pb2.VagueInput):
                # A model corrected on its task tends to escape into "vague", quoting the
                # correction (issue 14.5); the sentence was a task, so this is no verdict.
                raise OutputInvalid(errors)
        except OutputInvalid as exc:
            truncated = isinstance(exc, _Truncated)
            _record("core", caller.model, "truncated" if truncated else "invalid_output")
            errors = exc.errors
            rejected_task = rejected_task or exc.verdict == "task"
            log.warning("parse-task core answer rejected", extra={"errors": errors})
            messages = [
                *messages,
                {"role": "assistant", "content": result.content or ""},
                {"role": "user", "content": _feedback(errors, truncated)},
            ]
            continue
        vague = isinstance(answer, jobs_pb2.VagueInput)
        _record("core", caller.model, "vague" if vague else "ok")
        return answer
    raise OutputInvalid(errors)


async def _subtasks(run: _Run, messages: list[ChatCompletionMessageParam]) -> list[str] | None:
    """Subtasks are a bonus: any failure leaves them None (unknown) rather than failing the job;
    an atomic task gives []. Cancellation is passed on."""
    caller = run.caller
    try:
        result = await caller.call(
            "subtasks",
            messages,
            subtasks_response_schema(),
            SUBTASKS_TEMPERATURE,
            run.options.max_tokens_subtasks,
        )
    except CallFailed as exc:
        log.warning("parse-task subtasks call failed", extra={"outcome": exc.outcome})
        return None
    except Exception:
        log.exception("parse-task subtasks call failed unexpectedly")
        return None
    if result.truncated:
        _record("subtasks", caller.model, "truncated")
        log.warning("parse-task subtasks answer cut off at the output limit")
        return None
    try:
        steps = parse_subtasks(result.content)
    except OutputInvalid as exc:
        _record("subtasks", caller.model, "invalid_output")
        log.warning("parse-task subtasks answer rejected", extra={"errors": exc.errors})
        return None
    except Exception:
        # The validator is meant to be total; a bug in it must not fail the job.
        log.exception("parse-task subtasks validation failed unexpectedly")
        return None
    _record("subtasks", caller.model, "ok")
    return steps


@dataclass(frozen=True, slots=True)
class ParseTaskPlan:
    """What a run's first calls are made of, worked out once per job: the effective
    ``config``, the reference time ``now`` (aware, whole seconds), the ``core_messages`` and
    ``subtasks_messages``, the core call's ``core_schema``, and ``first_bound``, the most those two concurrent calls can cost
    (tokens). The worker needs the bound before the run (StartJob admits it, SPEC §8) and the
    run needs the rest; building them twice was a visible share of the worker's CPU per job
    (issue 12). Build it with :func:`plan_parse_task`; the lists must not be mutated."""

    config: jobs_pb2.ParseTaskConfig
    now: datetime
    core_messages: list[ChatCompletionMessageParam]
    subtasks_messages: list[ChatCompletionMessageParam]
    core_schema: ResponseSchema
    first_bound: int


def plan_parse_task(
    task_input: jobs_pb2.ParseTaskInput, prompt_version: str, options: CallOptions
) -> ParseTaskPlan:
    """The :class:`ParseTaskPlan` of a run of ``task_input`` with ``prompt_version`` and
    ``options``. Raises ``UnknownPromptVersion`` for a version without prompt files."""
    config = effective_config(task_input.config)
    now = reference_time(task_input)
    core_messages = _core_messages(task_input, config, prompt_version, now)
    subtasks_messages = _subtasks_messages(task_input, prompt_version)
    core_schema = core_response_schema(config)
    first_bound = call_bound(core_messages, core_schema, options.max_tokens_core) + call_bound(
        subtasks_messages, subtasks_response_schema(), options.max_tokens_subtasks
    )
    return ParseTaskPlan(config, now, core_messages, subtasks_messages, core_schema, first_bound)


def first_calls_bound(
    task_input: jobs_pb2.ParseTaskInput, prompt_version: str, options: CallOptions
) -> int:
    """The most the first, concurrent calls of a run (core + subtasks) can cost, tokens: the
    amount :func:`run_parse_task` passes to ``guard.admit`` first, so a caller can have it
    reserved before the run starts (the worker's StartJob, SPEC §8)."""
    return plan_parse_task(task_input, prompt_version, options).first_bound


async def run_parse_task(
    client: openai.AsyncOpenAI,
    model: str,
    task_input: jobs_pb2.ParseTaskInput,
    prompt_version: str = "v1",
    *,
    timeout: float | None = None,
    guard: CallGuard | None = None,
    meter: UsageMeter | None = None,
    options: CallOptions | None = None,
    plan: ParseTaskPlan | None = None,
) -> ParseTaskResult:
    """Runs one attempt of a parse-task job: the core and subtasks calls concurrently, then at
    most one corrective core call.

    ``timeout`` (seconds) overrides the client's per-call timeout. ``guard`` is asked before
    each call or group of concurrent calls with the most they can cost (prompt estimate +
    ``max_tokens``); ``None`` means no budget check. ``meter`` receives each call's usage as the
    call ends (so a caller that cancels this coroutine still knows what was spent; an abandoned
    call is charged its bound, marked estimated). ``options`` override those attached to
    ``client`` (:func:`taskmesh.capabilities.llm_client.call_options`). ``plan``: the run's
    :func:`plan_parse_task` of the same input, version and options when the caller already
    made it (the worker, for StartJob's bound); None makes it here.

    Returns a :class:`ParseTaskResult` (``output.subtasks`` empty when the task is atomic or
    the subtasks call failed). Raises
    :class:`LLMTransientError`, :class:`LLMRejectedError`, :class:`InvalidOutputError` or
    :class:`BudgetExhaustedError`, each carrying the usage of every call made.
    """
    outcome = "error"
    try:
        result = await _run_parse_task(
            client,
            model,
            task_input,
            prompt_version,
            timeout=timeout,
            guard=guard,
            meter=meter,
            options=options,
            plan=plan,
        )
        outcome = "vague" if result.vague is not None else "ok"
        result.model, result.prompt_version = model, prompt_version
        return result
    except InvalidOutputError:
        outcome = "invalid_output"
        raise
    except LLMRejectedError:
        outcome = "rejected"
        raise
    except LLMTransientError:
        outcome = "transient"
        raise
    except BudgetExhaustedError:
        outcome = "budget_exhausted"
        raise
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        metrics.labelled(metrics.parse_task_runs, model, prompt_version, outcome).inc()


async def _run_parse_task(
    client: openai.AsyncOpenAI,
    model: str,
    task_input: jobs_pb2.ParseTaskInput,
    prompt_version: str = "v1",
    *,
    timeout: float | None = None,
    guard: CallGuard | None = None,
    meter: UsageMeter | None = None,
    options: CallOptions | None = None,
    plan: ParseTaskPlan | None = None,
) -> ParseTaskResult:
    meter = meter if meter is not None else UsageMeter()
    opts = options if options is not None else call_options(client)
    if plan is None:
        plan = plan_parse_task(task_input, prompt_version, opts)
    run = _Run(LLMCaller(client, model, opts, meter, timeout), guard, opts)
    try:
        await run.admit(plan.first_bound)
    except BudgetRefused as exc:
        raise BudgetExhaustedError(f"budget refused the first calls: {exc}", meter.usage()) from exc

    # Both calls always run to completion, even when the core one fails early: cancelling
    # the other would leave tokens spent but never charged.
    core, steps = await asyncio.gather(
        _core(run, plan, task_input),
        _subtasks(run, plan.subtasks_messages),
        return_exceptions=True,
    )
    usage = meter.usage()
    for outcome in (core, steps):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
    if isinstance(steps, BaseException):
        raise steps
    if isinstance(core, CallFailed):
        if core.transient:
            raise LLMTransientError(str(core), usage, retry_after_s=core.retry_after_s) from core
        raise LLMRejectedError(str(core), usage, detail=core.detail) from core
    if isinstance(core, BudgetRefused):
        raise BudgetExhaustedError(f"budget refused the corrective call: {core}", usage) from core
    if isinstance(core, OutputInvalid):
        raise InvalidOutputError(
            f"the model's answer failed validation {CORE_ATTEMPTS} times: {core}",
            usage,
            core.errors,
        ) from core
    if isinstance(core, BaseException):
        raise core
    if isinstance(core, jobs_pb2.VagueInput):
        return ParseTaskResult(output=None, vague=core, usage=usage)
    if steps:
        core.subtasks.extend(steps)
    return ParseTaskResult(output=core, vague=None, usage=usage)
