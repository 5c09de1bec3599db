"""Runs parse-task against an OpenAI-compatible endpoint: the core and subtasks calls in
parallel, the core answer checked and retried once with the errors, every call's tokens
counted so the budget is charged for what was really spent.

Transient endpoint failures are raised, not retried here: the queue owns retries, with
backoff and an attempt limit, and a second retry loop here would multiply them."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from taskmesh import metrics
from taskmesh.jobs.v1 import jobs_pb2

from .config import effective_config
from .prompts import reference_time, render_core, render_subtasks
from .schema import (
    OutputInvalid,
    core_response_format,
    parse_core,
    parse_subtasks,
    subtasks_response_format,
)

log = logging.getLogger(__name__)

CORE_TEMPERATURE = 0.0
SUBTASKS_TEMPERATURE = 0.3
#: Core attempts per job run: the first answer plus one retry that sees its errors.
CORE_ATTEMPTS = 2


@dataclass
class ParseTaskResult:
    output: jobs_pb2.ParseTaskOutput | None  # set on success
    vague: jobs_pb2.VagueInput | None  # set when the model judged the input vague
    usage: jobs_pb2.TokenUsage  # every call made, failed ones included


class ParseTaskError(Exception):
    """A run that produced no task; ``usage`` is still owed to the budget."""

    def __init__(self, message: str, usage: jobs_pb2.TokenUsage) -> None:
        super().__init__(message)
        self.usage = usage


class LLMTransientError(ParseTaskError):
    """429, 5xx, timeout or connection failure on the core call: worth another attempt."""


class LLMRequestError(LLMTransientError):
    """The endpoint refused the request itself (400, 401, 403, 404, 422…).

    Retrying it unchanged will not help, but its usual cause is the deployment (key, model
    name, base URL), which an operator can fix while the job waits in the retry queues or
    the dead-letter queue; so it stays a transient error for callers that do not single
    it out."""


class InvalidOutputError(ParseTaskError):
    """The core answer failed validation on every attempt."""

    def __init__(self, message: str, usage: jobs_pb2.TokenUsage, errors: list[str]) -> None:
        super().__init__(message, usage)
        self.errors = errors


@dataclass
class _Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0

    def proto(self) -> jobs_pb2.TokenUsage:
        return jobs_pb2.TokenUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            llm_calls=self.llm_calls,
        )


class _CallFailed(Exception):
    def __init__(self, message: str, outcome: str, transient: bool) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.transient = transient


@dataclass
class _Run:
    client: openai.AsyncOpenAI
    model: str
    timeout: float | None
    usage: _Usage = field(default_factory=_Usage)

    async def call(
        self,
        operation: str,
        messages: list[ChatCompletionMessageParam],
        response_format: dict[str, Any],
        temperature: float,
    ) -> str | None:
        """The answer's text; records latency and tokens, and the outcome of failed calls
        (the caller records it for answered ones, once it has judged the content)."""
        self.usage.llm_calls += 1
        started = time.perf_counter()
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=temperature,
                response_format=cast(ResponseFormatJSONSchema, response_format),
                timeout=openai.NOT_GIVEN if self.timeout is None else self.timeout,
            )
        except openai.OpenAIError as exc:
            failure = _classify(exc)
            _record(operation, self.model, failure.outcome)
            raise failure from exc
        finally:
            metrics.llm_latency.labels(operation, self.model).observe(time.perf_counter() - started)

        content = response.choices[0].message.content if response.choices else None
        if response.usage is not None:
            prompt_tokens = response.usage.prompt_tokens or 0
            completion_tokens = response.usage.completion_tokens or 0
        else:
            # Endpoints that omit usage still spent tokens; charge an estimate rather than 0.
            prompt_tokens = _estimate(sum(len(str(m.get("content") or "")) for m in messages))
            completion_tokens = _estimate(len(content or ""))
        self.usage.input_tokens += prompt_tokens
        self.usage.output_tokens += completion_tokens
        metrics.llm_tokens.labels(operation, self.model, "input").inc(prompt_tokens)
        metrics.llm_tokens.labels(operation, self.model, "output").inc(completion_tokens)
        return content


def _record(operation: str, model: str, outcome: str) -> None:
    metrics.llm_calls.labels(operation, model, outcome).inc()


def _estimate(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _classify(exc: openai.OpenAIError) -> _CallFailed:
    if isinstance(exc, openai.APITimeoutError):
        return _CallFailed("LLM call timed out", "timeout", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return _CallFailed("LLM endpoint unreachable", "connection_error", transient=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return _CallFailed("LLM endpoint rate limited the call", "rate_limited", True)
        if status >= 500 or status in (408, 409):
            return _CallFailed(f"LLM endpoint answered {status}", "server_error", True)
        return _CallFailed(f"LLM endpoint refused the request ({status})", "request_error", False)
    if isinstance(exc, openai.APIResponseValidationError):
        return _CallFailed("LLM endpoint sent an unreadable response", "bad_response", True)
    return _CallFailed(f"LLM call failed: {type(exc).__name__}", "error", transient=False)


def _feedback(errors: list[str]) -> str:
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        "Your previous answer was rejected for these reasons:\n"
        f"{listed}\n"
        "Answer again with one JSON object that follows every rule."
    )


async def _core(
    run: _Run, task_input: jobs_pb2.ParseTaskInput, config: jobs_pb2.ParseTaskConfig, version: str
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": render_core(config, reference_time(task_input), version)},
        {"role": "user", "content": task_input.natural_language},
    ]
    response_format = core_response_format(config)
    errors: list[str] = []
    for _ in range(CORE_ATTEMPTS):
        content = await run.call("core", messages, response_format, CORE_TEMPERATURE)
        try:
            answer = parse_core(content, config)
        except OutputInvalid as exc:
            _record("core", run.model, "invalid_output")
            errors = exc.errors
            log.warning("parse-task core answer rejected", extra={"errors": errors})
            messages = [
                *messages,
                {"role": "assistant", "content": content or ""},
                {"role": "user", "content": _feedback(errors)},
            ]
            continue
        vague = isinstance(answer, jobs_pb2.VagueInput)
        _record("core", run.model, "vague" if vague else "ok")
        return answer
    raise OutputInvalid(errors)


async def _subtasks(run: _Run, task_input: jobs_pb2.ParseTaskInput, version: str) -> list[str]:
    """Subtasks are a bonus: any failure leaves them empty rather than failing the job."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": render_subtasks(version)},
        {"role": "user", "content": task_input.natural_language},
    ]
    try:
        content = await run.call(
            "subtasks", messages, subtasks_response_format(), SUBTASKS_TEMPERATURE
        )
    except _CallFailed as exc:
        log.warning("parse-task subtasks call failed", extra={"outcome": exc.outcome})
        return []
    except Exception:
        log.exception("parse-task subtasks call failed unexpectedly")
        return []
    try:
        steps = parse_subtasks(content)
    except OutputInvalid as exc:
        _record("subtasks", run.model, "invalid_output")
        log.warning("parse-task subtasks answer rejected", extra={"errors": exc.errors})
        return []
    _record("subtasks", run.model, "ok")
    return steps


async def run_parse_task(
    client: openai.AsyncOpenAI,
    model: str,
    task_input: jobs_pb2.ParseTaskInput,
    prompt_version: str = "v1",
    *,
    timeout: float | None = None,
) -> ParseTaskResult:
    """Runs one attempt of a parse-task job.

    ``timeout`` overrides the client's per-call timeout. Raises :class:`LLMTransientError`
    (or its subclass :class:`LLMRequestError`) or :class:`InvalidOutputError`, each carrying
    the usage of every call made, the subtasks call included.
    """
    config = effective_config(task_input.config)
    run = _Run(client, model, timeout)
    # Both calls always run to completion, even when the core one fails early: cancelling
    # the other would leave tokens spent but never charged.
    core, steps = await asyncio.gather(
        _core(run, task_input, config, prompt_version),
        _subtasks(run, task_input, prompt_version),
        return_exceptions=True,
    )
    usage = run.usage.proto()
    if isinstance(steps, BaseException):
        raise steps
    if isinstance(core, _CallFailed):
        error_type = LLMTransientError if core.transient else LLMRequestError
        raise error_type(str(core), usage) from core
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
    core.subtasks.extend(steps)
    return ParseTaskResult(output=core, vague=None, usage=usage)
