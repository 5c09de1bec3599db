"""run_parse_task against the simulator through the real openai client."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from prometheus_client import REGISTRY

from taskmesh.capabilities.parse_task import (
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
    run_parse_task,
)
from taskmesh.jobs.v1 import jobs_pb2

MakeInput = Callable[..., jobs_pb2.ParseTaskInput]


def _model() -> str:
    # A model label of its own keeps each test's metric samples apart.
    return f"sim-{uuid.uuid4().hex[:8]}"


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_task_with_subtasks(sim: Any, make_input: MakeInput) -> None:
    model = _model()
    async with sim() as (server, client):
        result = await run_parse_task(client, model, make_input("Submit Q2 report by next Friday"))
    assert result.vague is None and result.output is not None
    out = result.output
    assert out.title == "Submit Q2 Report"
    assert out.due_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 19, tzinfo=UTC)
    assert out.category == "work"
    assert out.priority.level == "medium" and 4 <= out.priority.score <= 6
    assert out.priority.reason
    assert 3 <= len(out.subtasks) <= 7
    assert out.subtasks[-1].startswith("Submit")

    assert result.usage.llm_calls == 2
    assert result.usage.input_tokens == server.stats["tokens"]["prompt"] > 0
    assert result.usage.output_tokens == server.stats["tokens"]["completion"] > 0
    assert server.stats["calls"] == {"core": 1, "subtasks": 1}

    for operation in ("core", "subtasks"):
        labels = {"operation": operation, "model": model}
        assert _metric("taskmesh_llm_calls_total", outcome="ok", **labels) == 1
        assert _metric("taskmesh_llm_call_seconds_count", **labels) == 1
        assert _metric("taskmesh_llm_tokens_total", kind="input", **labels) > 0
        assert _metric("taskmesh_llm_tokens_total", kind="output", **labels) > 0


async def test_atomic_task(sim: Any, make_input: MakeInput) -> None:
    async with sim() as (_, client):
        result = await run_parse_task(client, _model(), make_input("Buy groceries"))
    assert result.output is not None
    assert result.output.title == "Buy Groceries"
    assert result.output.category == "errand"
    assert not result.output.HasField("due_time")
    assert list(result.output.subtasks) == []
    assert result.usage.llm_calls == 2


async def test_vague_input_is_charged(sim: Any, make_input: MakeInput) -> None:
    model = _model()
    async with sim() as (server, client):
        result = await run_parse_task(client, model, make_input("Fix it"))
    assert result.output is None
    assert result.vague is not None
    assert result.vague.reason
    assert 1 <= len(result.vague.suggestions) <= 3
    # The subtasks call is ignored but still paid for.
    assert result.usage.llm_calls == 2
    assert result.usage.input_tokens == server.stats["tokens"]["prompt"] > 0
    assert result.usage.output_tokens == server.stats["tokens"]["completion"] > 0
    assert _metric("taskmesh_llm_calls_total", operation="core", model=model, outcome="vague") == 1


async def test_malformed_core_output_is_retried_then_fails(sim: Any, make_input: MakeInput) -> None:
    model = _model()
    async with sim(rate_malformed=1.0, fault_kinds={"core"}) as (server, client):
        with pytest.raises(InvalidOutputError) as info:
            await run_parse_task(client, model, make_input("Pay electricity bill tomorrow"))
    assert server.stats["calls"] == {"core": 2, "subtasks": 1}
    usage = info.value.usage
    assert usage.llm_calls == 3
    assert usage.input_tokens == server.stats["tokens"]["prompt"] > 0
    assert usage.output_tokens == server.stats["tokens"]["completion"] > 0
    assert info.value.errors
    labels = {"operation": "core", "model": model}
    assert _metric("taskmesh_llm_calls_total", outcome="invalid_output", **labels) == 2


@pytest.mark.parametrize(
    ("option", "outcome"), [("rate_429", "rate_limited"), ("rate_500", "server_error")]
)
async def test_endpoint_errors_are_transient(
    sim: Any, make_input: MakeInput, option: str, outcome: str
) -> None:
    model = _model()
    async with sim(**{option: 1.0}) as (_, client):
        with pytest.raises(LLMTransientError) as info:
            await run_parse_task(client, model, make_input("Pay electricity bill tomorrow"))
    # Calls that got no answer cost no tokens, but they were made.
    assert info.value.usage == jobs_pb2.TokenUsage(llm_calls=2)
    labels = {"operation": "core", "model": model}
    assert _metric("taskmesh_llm_calls_total", outcome=outcome, **labels) == 1


async def test_timeout_is_transient(sim: Any, make_input: MakeInput) -> None:
    async with sim(timeout=0.3, rate_timeout=1.0, fault_kinds={"core"}) as (server, client):
        with pytest.raises(LLMTransientError, match="timed out") as info:
            await run_parse_task(client, _model(), make_input("Pay electricity bill tomorrow"))
    # The subtasks call answered, so its tokens are part of what the failed attempt cost; the
    # timed-out core call is charged its bound (the server may have generated that much).
    usage = info.value.usage
    assert usage.llm_calls == 2
    assert usage.input_tokens > server.stats["tokens"]["prompt"] > 0
    assert usage.output_tokens >= server.stats["tokens"]["completion"] + 400


async def test_subtasks_failure_leaves_subtasks_empty(sim: Any, make_input: MakeInput) -> None:
    for fault in ("rate_500", "rate_malformed", "rate_429"):
        async with sim(**{fault: 1.0, "fault_kinds": {"subtasks"}}) as (_, client):
            result = await run_parse_task(
                client, _model(), make_input("Submit Q2 report by next Friday")
            )
        assert result.output is not None, fault
        assert result.output.title == "Submit Q2 Report"
        assert list(result.output.subtasks) == []
        assert result.usage.llm_calls == 2


async def test_core_and_subtasks_calls_overlap(sim: Any, make_input: MakeInput) -> None:
    async with sim(latency_ms=300) as (server, client):
        await run_parse_task(client, _model(), make_input("Plan vacation next month"))
    assert server.stats["max_in_flight"] == 2


async def test_unknown_endpoint_path_is_rejected_not_retried(
    sim: Any, make_input: MakeInput
) -> None:
    async with sim() as (server, _):
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{server.port}/nowhere", api_key="sim", max_retries=0
        )
        async with client:
            with pytest.raises(LLMRejectedError) as info:
                await run_parse_task(client, _model(), make_input("Buy groceries"))
    assert info.value.usage.llm_calls == 2
    # A 404 is deterministic: it must not travel the retry queues as a transient error.
    assert not isinstance(info.value, LLMTransientError)
    assert info.value.detail and "127.0.0.1" not in info.value.detail


async def test_unreachable_endpoint_is_transient(make_input: MakeInput) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sim", max_retries=0, timeout=5
    )
    async with client:
        with pytest.raises(LLMTransientError, match="unreachable"):
            await run_parse_task(client, _model(), make_input("Buy groceries"))


# --- the conversation itself, with a scripted client -----------------------------------------


class _ScriptedCompletions:
    """Answers core calls from a script, subtasks calls with null, and keeps every request."""

    def __init__(self, core_answers: list[str]) -> None:
        self.core_answers = core_answers
        self.requests: list[dict[str, Any]] = []

    async def create(self, **kwargs: Any) -> ChatCompletion:
        self.requests.append(kwargs)
        name = kwargs["response_format"]["json_schema"]["name"]
        content = self.core_answers.pop(0) if name == "parse_task_core" else '{"subtasks": null}'
        return ChatCompletion.model_validate(
            {
                "id": "scripted",
                "object": "chat.completion",
                "created": 0,
                "model": kwargs["model"],
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


class _ScriptedClient:
    def __init__(self, core_answers: list[str]) -> None:
        self.completions = _ScriptedCompletions(core_answers)
        self.chat = self


GOOD = {
    "result": "task",
    "task": {
        "title": "Pay Electricity Bill",
        "dueDate": "2024-01-16T00:00:00Z",
        "category": "finance",
        "priority": {"level": "high", "score": 7, "reason": "Late fees."},
    },
    "error": None,
}


async def test_retry_sees_its_errors_and_recovers(make_input: MakeInput) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["task"]["priority"]["score"] = 9
    client = _ScriptedClient([json.dumps(bad), json.dumps(GOOD)])
    text = "Pay electricity bill tomorrow"
    result = await run_parse_task(client, _model(), make_input(text))  # type: ignore[arg-type]

    assert result.output is not None and result.output.priority.score == 7
    assert result.usage == jobs_pb2.TokenUsage(input_tokens=300, output_tokens=30, llm_calls=3)
    core_calls = [
        r
        for r in client.completions.requests
        if r["response_format"]["json_schema"]["name"] == "parse_task_core"
    ]
    first, retry = core_calls
    assert first["temperature"] == 0
    assert [m["role"] for m in retry["messages"]] == ["system", "user", "assistant", "user"]
    assert retry["messages"][2]["content"] == json.dumps(bad)
    assert "from 7 to 8" in retry["messages"][3]["content"]


async def test_sentence_travels_alone_in_the_user_message(make_input: MakeInput) -> None:
    text = "Pay electricity bill tomorrow"
    client = _ScriptedClient([json.dumps(GOOD)])
    await run_parse_task(client, _model(), make_input(text))  # type: ignore[arg-type]
    for request in client.completions.requests:
        system, user = request["messages"]
        assert system["role"] == "system" and text not in system["content"]
        assert user == {"role": "user", "content": text}
    temperatures = {
        r["response_format"]["json_schema"]["name"]: r["temperature"]
        for r in client.completions.requests
    }
    assert temperatures == {"parse_task_core": 0.0, "parse_task_subtasks": 0.3}
    core = next(
        r
        for r in client.completions.requests
        if r["response_format"]["json_schema"]["name"] == "parse_task_core"
    )
    assert "Current UTC time: 2024-01-15T12:00:00Z" in core["messages"][0]["content"].splitlines()


async def test_invisible_characters_never_reach_the_task(make_input: MakeInput) -> None:
    """What the worker stores (and the API shows) is the title without hidden characters; a
    title of hidden characters alone is refused like an empty one and asked for again."""
    hidden = json.loads(json.dumps(GOOD))
    hidden["task"]["title"] = "\u200b\u2066\u2069\ufeff"
    padded = json.loads(json.dumps(GOOD))
    padded["task"]["title"] = "\u200d Pay Electricity Bill\u202c" + "\u200b" * 32
    padded["task"]["priority"]["reason"] = "Late fees.\u2060\u200b"
    client = _ScriptedClient([json.dumps(hidden), json.dumps(padded)])
    text = "Pay electricity bill tomorrow"
    result = await run_parse_task(client, _model(), make_input(text))  # type: ignore[arg-type]

    assert result.output is not None
    assert result.output.title == "Pay Electricity Bill"
    assert result.output.priority.reason == "Late fees."
    assert result.usage.llm_calls == 3  # the invisible title was a failed attempt
    retry = [
        r
        for r in client.completions.requests
        if r["response_format"]["json_schema"]["name"] == "parse_task_core"
    ][1]
    assert "title must have 2-8 words (got 0" in retry["messages"][3]["content"]
