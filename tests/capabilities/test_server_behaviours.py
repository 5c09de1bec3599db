"""Endpoints that behave like the servers users run (issue 14): each incompatibility met with
llama.cpp, llama-cpp-python, LiteLLM, vLLM or Ollama, reproduced by the simulator's knobs, and
the behaviour taskmesh must show against it. Real HTTP, the real openai client."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from taskmesh.capabilities.errors import (
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
    UsageMeter,
)
from taskmesh.capabilities.llm_calls import forget_endpoints
from taskmesh.capabilities.llm_client import CallOptions
from taskmesh.capabilities.parse_task import run_parse_task
from taskmesh.jobs.v1 import jobs_pb2

MakeInput = Callable[..., jobs_pb2.ParseTaskInput]
SENTENCE = "Submit Q2 report by next Friday"


@pytest.fixture(autouse=True)
def _fresh_endpoint_memory() -> None:
    forget_endpoints()


def _model() -> str:
    return f"sim-{uuid.uuid4().hex[:8]}"


async def test_endpoint_refusing_json_schema_gets_json_object_and_is_remembered(
    sim: Any, make_input: MakeInput, caplog: pytest.LogCaptureFixture
) -> None:
    """llama-cpp-python answers json_schema with HTTP 500: the run falls back to json_object
    with the schema in the prompt, logs it once, and later runs start there."""
    model = _model()
    async with sim(refuse_json_schema=True) as (server, client):
        first = await run_parse_task(client, model, make_input(SENTENCE))
        refused_once = server.stats["faults"]["json_schema_refused"]
        second = await run_parse_task(client, model, make_input("Pay electricity bill tomorrow"))
        assert server.stats["faults"]["json_schema_refused"] == refused_once
    assert first.output is not None and first.output.title == "Submit Q2 Report"
    assert len(first.output.subtasks) >= 3
    assert second.output is not None and second.output.category == "finance"
    # Both kinds of call were refused once each (they run concurrently), never again.
    assert refused_once == 2
    # The refused calls count as calls made (of no tokens).
    assert first.usage.llm_calls == 4 and second.usage.llm_calls == 2
    assert any("refused response_format json_schema" in r.getMessage() for r in caplog.records)


async def test_pinned_json_schema_on_a_refusing_endpoint_is_rejected_not_retried(
    sim: Any, make_input: MakeInput
) -> None:
    async with sim(refuse_json_schema=True) as (_, client):
        with pytest.raises(LLMRejectedError) as info:
            await run_parse_task(
                client,
                _model(),
                make_input(SENTENCE),
                options=CallOptions(response_format="json_schema"),
            )
    assert "json_schema" in info.value.detail


@pytest.mark.parametrize("mode", ["json_object", "none"])
async def test_pinned_response_format_modes_work(
    sim: Any, make_input: MakeInput, mode: str
) -> None:
    async with sim(refuse_json_schema=True) as (server, client):
        result = await run_parse_task(
            client,
            _model(),
            make_input(SENTENCE),
            options=CallOptions(response_format=mode),  # type: ignore[arg-type]
        )
    assert result.output is not None and result.output.title == "Submit Q2 Report"
    assert "json_schema_refused" not in server.stats["faults"]


async def test_grammar_converter_without_type_lists_still_constrains_the_answer(
    sim: Any, make_input: MakeInput
) -> None:
    """llama-cpp-python 0.2.60 cannot turn ``"type": [..., "null"]`` into a grammar and lets
    the model answer any JSON: the schemas say "nullable" with ``anyOf``, so it converts."""
    async with sim(refuse_json_schema=True, grammar_without_type_lists=True) as (server, client):
        result = await run_parse_task(client, _model(), make_input(SENTENCE))
    assert "unconstrained" not in server.stats["faults"]
    assert result.output is not None and result.output.title == "Submit Q2 Report"
    assert len(result.output.subtasks) >= 3


async def test_model_without_system_role_gets_instructions_in_the_user_message(
    sim: Any, make_input: MakeInput
) -> None:
    async with sim(no_system_role=True) as (server, client):
        result = await run_parse_task(client, _model(), make_input(SENTENCE))
    assert result.output is not None and result.output.title == "Submit Q2 Report"
    assert result.output.due_time.ToDatetime().day == 19
    assert server.stats["faults"]["system_refused"] >= 1


async def test_rambling_model_is_stopped_by_the_output_bound(
    sim: Any, make_input: MakeInput
) -> None:
    """A model that never stops: every call carries max_tokens, so each ends at the bound
    (finish_reason length), reported as a truncation, not "not valid JSON", and charged."""
    options = CallOptions(max_tokens_core=120, max_tokens_subtasks=80)
    started = time.monotonic()
    async with sim(ramble=True, timeout_hang_s=60, timeout=30) as (server, client):
        with pytest.raises(InvalidOutputError) as info:
            await run_parse_task(client, _model(), make_input(SENTENCE), options=options)
    assert time.monotonic() - started < 20, "the calls must end at the bound, not a timeout"
    assert "runaway" not in server.stats["faults"]
    assert any("cut off at the output limit (120 tokens)" in e for e in info.value.errors)
    # The errors reach the job's client: they describe the answer, the retry's instruction
    # ("answer with a shorter JSON object") was the model's alone.
    assert not any("answer with" in e.lower() for e in info.value.errors)
    assert not any("not valid JSON" in e for e in info.value.errors)
    usage = info.value.usage
    assert usage.llm_calls == 3
    assert usage.output_tokens == server.stats["tokens"]["completion"] >= 120 * 2 + 80


async def test_unbounded_runaway_is_charged_its_bound_when_the_client_gives_up(
    sim: Any, make_input: MakeInput
) -> None:
    """Behind a proxy the abandoned generation goes on; the ledger must see it (issue 14.2-3):
    a timed-out call is charged prompt estimate + max_tokens, marked estimated."""
    meter = UsageMeter()
    options = CallOptions(max_tokens_core=200, max_tokens_subtasks=100)
    async with sim(rate_timeout=1.0, fault_kinds={"core"}, timeout=0.5) as (_, client):
        with pytest.raises(LLMTransientError, match="timed out"):
            await run_parse_task(
                client, _model(), make_input(SENTENCE), meter=meter, options=options
            )
    core = next(c for c in meter.calls if c.operation == "core")
    assert core.estimated and core.output_tokens == 200 and core.input_tokens > 100


@pytest.mark.parametrize(
    "message",
    [
        "request (756 tokens) exceeds the available context size (512 tokens), try increasing it",
        "Invalid model name passed in model=gpt-4.1-mini. Call `/v1/models` to view available "
        "models for your key. See http://10.0.3.4:4000/docs",
    ],
)
async def test_deterministic_refusal_fails_once_with_the_endpoints_reason(
    sim: Any, make_input: MakeInput, message: str
) -> None:
    async with sim(reject_400=message) as (server, client):
        with pytest.raises(LLMRejectedError) as info:
            await run_parse_task(client, _model(), make_input(SENTENCE))
    detail = info.value.detail
    assert detail.split(" ")[:3] == message.split(" ")[:3]
    assert "10.0.3.4" not in detail and "http" not in detail and len(detail) <= 200
    # One call of each kind, no corrective retry or fallback loop on a refusal.
    assert server.stats["calls"] == {"core": 1, "subtasks": 1}
    assert info.value.usage.llm_calls == 2


async def test_missing_usage_is_estimated_and_marked(sim: Any, make_input: MakeInput) -> None:
    meter = UsageMeter()
    async with sim(omit_usage=True) as (_, client):
        result = await run_parse_task(client, _model(), make_input(SENTENCE), meter=meter)
    assert result.output is not None
    assert result.usage.input_tokens > 100 and result.usage.output_tokens > 10
    assert meter.estimated_calls == 2 == result.usage.llm_calls


@pytest.mark.parametrize("seconds", [25, 0.5])
async def test_429_passes_on_the_endpoints_retry_after(
    sim: Any, make_input: MakeInput, seconds: float
) -> None:
    async with sim(rate_429=1.0, retry_after_s=seconds) as (_, client):
        with pytest.raises(LLMTransientError) as info:
            await run_parse_task(client, _model(), make_input(SENTENCE))
    assert info.value.retry_after_s == pytest.approx(seconds)


# --- the corrective retry must not escape into "vague" (issue 14.5) --------------------------


def _completion(content: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        }
    )


class _Scripted:
    def __init__(self, core: list[dict[str, Any]]) -> None:
        self.core = [json.dumps(c) for c in core]
        self.chat = self.completions = self

    async def create(self, **kwargs: Any) -> ChatCompletion:
        await asyncio.sleep(0)
        if kwargs["response_format"]["json_schema"]["name"] == "parse_task_core":
            return _completion(self.core.pop(0))
        return _completion('{"subtasks": null}')


BAD_TASK = {
    "result": "task",
    "task": {
        "title": "Pay",
        "dueDate": None,
        "category": "finance",
        "priority": {"level": "high", "score": 7, "reason": "Late fees."},
    },
    "error": None,
}
ESCAPE = {
    "result": "vague",
    "task": None,
    "error": {
        "reason": "The title must have 2-8 words (got 1: 'Pay').",
        "suggestions": ["Give a longer title?"],
    },
}


async def test_vague_verdict_after_a_rejected_task_is_not_accepted(make_input: MakeInput) -> None:
    client = _Scripted([BAD_TASK, ESCAPE])
    with pytest.raises(InvalidOutputError) as info:
        await run_parse_task(client, "m", make_input("Pay the electricity bill"))  # type: ignore[arg-type]
    # The user is told which rule the answer broke, not the model's quote of it as "vague".
    assert any("title must have 2-8 words" in e for e in info.value.errors)


async def test_vague_verdict_corrected_is_still_a_verdict(make_input: MakeInput) -> None:
    bad_vague = {**ESCAPE, "error": {"reason": "Too generic.", "suggestions": []}}
    good_vague = {**ESCAPE, "error": {"reason": "Too generic.", "suggestions": ["What?"]}}
    client = _Scripted([bad_vague, good_vague])
    result = await run_parse_task(client, "m", make_input("Do stuff"))  # type: ignore[arg-type]
    assert result.vague is not None and list(result.vague.suggestions) == ["What?"]


# The real-server run (SmolLM2-135M behind llama-cpp-python): under the schema's grammar the
# model answered "vague" for every sentence, its reason a schema description copied verbatim.
COPIED = {
    "result": "vague",
    "task": None,
    "error": {
        "reason": "why the request cannot be a task",
        "suggestions": ["1-3 questions or missing details"],
    },
}
GOOD_TASK = {**BAD_TASK, "task": {**BAD_TASK["task"], "title": "Pay Electricity Bill"}}  # type: ignore[dict-item]


async def test_schema_description_copied_as_a_verdict_is_not_accepted(
    make_input: MakeInput,
) -> None:
    client = _Scripted([COPIED, COPIED])
    with pytest.raises(InvalidOutputError) as info:
        await run_parse_task(client, "m", make_input("Pay the electricity bill"))  # type: ignore[arg-type]
    assert any("repeats the schema's description" in e for e in info.value.errors)


async def test_schema_description_copied_is_corrected_on_the_retry(make_input: MakeInput) -> None:
    client = _Scripted([COPIED, GOOD_TASK])
    result = await run_parse_task(client, "m", make_input("Pay the electricity bill"))  # type: ignore[arg-type]
    assert result.output is not None and result.output.title == "Pay Electricity Bill"


# The llama-server run (SmolLM2-135M, 2026-11-30): clear sentences answered "vague" with the
# verdict word as the reason and the prompt's example date repeated as the suggestions.
PLACEHOLDER_VERDICT = {
    "result": "vague",
    "task": None,
    "error": {
        "reason": "vague",
        "suggestions": ["2024-01-16T00:00:00Z", "2024-01-16T00:00:00Z"],
    },
}


async def test_placeholder_verdict_is_not_accepted(make_input: MakeInput) -> None:
    client = _Scripted([PLACEHOLDER_VERDICT, PLACEHOLDER_VERDICT])
    with pytest.raises(InvalidOutputError) as info:
        await run_parse_task(client, "m", make_input("Pay the electricity bill tomorrow"))  # type: ignore[arg-type]
    errors = " ".join(info.value.errors)
    assert "must say why" in errors
    assert "suggestions must be distinct" in errors
    assert "suggestion 1 is a date alone" in errors


async def test_placeholder_verdict_is_corrected_on_the_retry(make_input: MakeInput) -> None:
    client = _Scripted([PLACEHOLDER_VERDICT, GOOD_TASK])
    result = await run_parse_task(client, "m", make_input("Pay the electricity bill"))  # type: ignore[arg-type]
    assert result.output is not None and result.output.title == "Pay Electricity Bill"
    assert result.vague is None
