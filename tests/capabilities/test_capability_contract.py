"""The interface the worker consumes: errors, the call guard and the usage meter."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    BudgetRefused,
    CapabilityError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
    UsageMeter,
    sanitise_detail,
)
from taskmesh.capabilities.llm_calls import retry_after_seconds
from taskmesh.capabilities.llm_client import CallOptions
from taskmesh.capabilities.parse_task import run_parse_task
from taskmesh.jobs.v1 import jobs_pb2

GOOD_CORE = json.dumps(
    {
        "result": "task",
        "task": {
            "title": "Pay Electricity Bill",
            "dueDate": "2024-01-16T00:00:00Z",
            "category": "finance",
            "priority": {"level": "high", "score": 7, "reason": "Late fees."},
        },
        "error": None,
    }
)
BAD_CORE = GOOD_CORE.replace('"score": 7', '"score": 9')


def _completion(model: str, content: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": model,
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


class _Client:
    """An in-process endpoint: core answers from a script, subtasks null; ``hang`` makes the
    named operation wait until cancelled."""

    def __init__(self, core: list[str], hang: str | None = None) -> None:
        self.core = core
        self.hang = hang
        self.requests: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.chat = self
        self.completions = self

    async def create(self, **kwargs: Any) -> ChatCompletion:
        self.requests.append(kwargs)
        name = kwargs["response_format"]["json_schema"]["name"]
        operation = "core" if name == "parse_task_core" else "subtasks"
        if operation == self.hang:
            self.started.set()
            await asyncio.Event().wait()
        content = self.core.pop(0) if operation == "core" else '{"subtasks": null}'
        return _completion(kwargs["model"], content)


class _Guard:
    def __init__(self, allow: int) -> None:
        self.allow = allow
        self.asked: list[int] = []

    async def admit(self, tokens: int) -> None:
        self.asked.append(tokens)
        if len(self.asked) > self.allow:
            raise BudgetRefused(f"{tokens} tokens not covered")


def test_every_error_kind_carries_usage() -> None:
    usage = jobs_pb2.TokenUsage(input_tokens=5, output_tokens=2, llm_calls=1)
    errors = [
        LLMTransientError("t", usage, retry_after_s=3.0),
        LLMRejectedError("r", usage, detail="bad"),
        InvalidOutputError("i", usage, ["title must have 2-8 words"]),
        BudgetExhaustedError("b", usage),
    ]
    for error in errors:
        assert isinstance(error, CapabilityError)
        assert error.usage == usage
    assert errors[0].retry_after_s == 3.0
    assert errors[2].errors == ["title must have 2-8 words"]
    assert CapabilityError("x").usage == jobs_pb2.TokenUsage()


@pytest.mark.parametrize(
    ("message", "leak"),
    [
        ("Invalid model name passed in model=gpt-4.1-mini, see https://docs.litellm.ai/x", "https"),
        ("upstream 10.0.0.12:8000 refused", "10.0.0.12"),
        ("key sk-abcdefghijklmnopqrstuvwxyz012345 is invalid", "sk-abc"),
        ("Authorization: Bearer tm_secretsecretsecret rejected", "tm_secret"),
        ("connect to llm.internal.example:8443 failed", "llm.internal"),
        ("owner admin@example.com", "admin@"),
        ("host [fe80::1]:80 down", "fe80"),
    ],
)
def test_rejection_detail_hides_urls_addresses_and_keys(message: str, leak: str) -> None:
    detail = LLMRejectedError("r", detail=message).detail
    assert leak not in detail
    assert "[redacted]" in detail


def test_rejection_detail_is_short_and_keeps_the_reason() -> None:
    message = "request (756 tokens) exceeds the available context size (512 tokens)" + " x" * 300
    detail = sanitise_detail(message)
    assert len(detail) <= 200
    assert detail.startswith("request (756 tokens) exceeds the available context size")
    assert sanitise_detail("line\nbreak\x00 and\ttabs") == "line break and tabs"


def test_meter_sums_calls_and_marks_estimates() -> None:
    meter = UsageMeter()
    meter.record("core", 100, 20, estimated=False)
    meter.record("subtasks", 80, 300, estimated=True)
    assert meter.usage() == jobs_pb2.TokenUsage(input_tokens=180, output_tokens=320, llm_calls=2)
    assert meter.estimated_calls == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "25"}, 25.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "2500", "retry-after": "9"}, 2.5),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_http_date() -> None:
    now = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    headers = {"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}
    assert retry_after_seconds(headers, now=now) == 30.0


async def test_guard_is_asked_with_the_bound_before_the_calls(make_input: Any) -> None:
    guard = _Guard(allow=10)
    client = _Client([GOOD_CORE])
    options = CallOptions(max_tokens_core=400, max_tokens_subtasks=300)
    await run_parse_task(
        client,  # type: ignore[arg-type]
        "m",
        make_input("Pay electricity bill tomorrow"),
        guard=guard,
        options=options,
    )
    # One admission for the concurrent core + subtasks pair, covering both output bounds and
    # more than the prompts' real size (100 tokens each here).
    assert len(guard.asked) == 1
    assert guard.asked[0] > 400 + 300 + 200
    assert all(r["max_tokens"] in (400, 300) for r in client.requests)


async def test_refused_first_admission_makes_no_call(make_input: Any) -> None:
    client = _Client([GOOD_CORE])
    with pytest.raises(BudgetExhaustedError) as info:
        await run_parse_task(
            client,  # type: ignore[arg-type]
            "m",
            make_input("Pay electricity bill tomorrow"),
            guard=_Guard(allow=0),
        )
    assert client.requests == []
    assert info.value.usage == jobs_pb2.TokenUsage()


async def test_refused_corrective_call_charges_what_was_spent(make_input: Any) -> None:
    client = _Client([BAD_CORE, GOOD_CORE])
    meter = UsageMeter()
    with pytest.raises(BudgetExhaustedError) as info:
        await run_parse_task(
            client,  # type: ignore[arg-type]
            "m",
            make_input("Pay electricity bill tomorrow"),
            guard=_Guard(allow=1),
            meter=meter,
        )
    # The first core call and the subtasks call were made; the corrective one was not.
    assert len(client.requests) == 2
    expected = jobs_pb2.TokenUsage(input_tokens=200, output_tokens=20, llm_calls=2)
    assert info.value.usage == expected
    assert meter.usage() == expected


async def test_cancelled_run_leaves_its_calls_in_the_meter_at_their_bound(make_input: Any) -> None:
    client = _Client([GOOD_CORE], hang="core")
    meter = UsageMeter()
    options = CallOptions(max_tokens_core=400, max_tokens_subtasks=300)
    task = asyncio.create_task(
        run_parse_task(
            client,  # type: ignore[arg-type]
            "m",
            make_input("Pay electricity bill tomorrow"),
            meter=meter,
            options=options,
        )
    )
    await asyncio.wait_for(client.started.wait(), 5)

    # Wait for the subtasks call to have answered before cancelling: a made state, not a race.
    async def subtasks_recorded() -> None:
        while not any(c.operation == "subtasks" for c in meter.calls):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(subtasks_recorded(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls = {c.operation: c for c in meter.calls}
    assert calls["subtasks"].estimated is False and calls["subtasks"].input_tokens == 100
    abandoned = calls["core"]
    assert abandoned.estimated is True
    assert abandoned.output_tokens == 400 and abandoned.input_tokens > 0
    assert meter.usage().llm_calls == 2
