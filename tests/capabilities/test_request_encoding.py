"""The request body built from pre-encoded parts (ResponseSchema, encode_request) is the
chat-completions request the SDK would send: byte for byte the compact encoding of the whole
body, for any text the user writes (issue 12)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai
import pytest
from aiohttp import web

from taskmesh.capabilities.errors import UsageMeter
from taskmesh.capabilities.llm_calls import (
    LLMCaller,
    ResponseSchema,
    call_bound,
    encode_request,
    estimate_prompt_tokens,
    json_schema_format,
)
from taskmesh.capabilities.llm_client import CallOptions, LLMClient
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.capabilities.parse_task.schema import (
    CORE_SCHEMA_NAME,
    core_response_schema,
    core_schema,
    subtasks_response_schema,
)
from tests.support.fake_llm import chat_completion

#: Texts JSON must escape (quotes, backslashes, every control character, the line separators
#: JavaScript cares about), and text it must carry as it is (non-BMP emoji, combining marks,
#: right-to-left script, a NUL).
SENTENCES = [
    'Say "hi" to Bob\'s team',
    "C:\\temp\\new folder\\ and \\u0041 literally",
    "".join(chr(c) for c in range(0x20)) + "\x7f",
    "line\u2028separator\u2029paragraph",
    "Book flights ✈️ to Tokyo 🗼 for the 👨‍👩‍👧 family 𝒻𝓇𝒾𝒹𝒶𝓎",
    "e\u0301te\u0301 \u05d3\u05d5\u05d7 \u0627\u0644\u062a\u0642\u0631\u064a\u0631 \x00 end",
    "",
]


def _reference(body: dict[str, Any]) -> bytes:
    """How a whole body was encoded before the parts were (the SDK's compact JSON)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _head(sentence: str) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Answer with JSON."},
            {"role": "user", "content": sentence},
        ],
        "temperature": 0.3,
        "max_tokens": 300,
    }


@pytest.mark.parametrize("sentence", SENTENCES)
@pytest.mark.parametrize("mode", ["json_schema", "json_object", "none"])
def test_the_spliced_body_is_the_whole_body_encoded(sentence: str, mode: Any) -> None:
    schema = core_response_schema(default_config())
    head = _head(sentence)
    data = encode_request(head, schema.encoded_format(mode))
    whole = dict(head)
    response_format = schema.response_format(mode)
    if response_format is not None:
        whole["response_format"] = response_format
    assert data == _reference(whole)
    assert json.loads(data) == whole
    assert json.loads(data)["messages"][1]["content"] == sentence


@pytest.mark.parametrize(
    "messages",
    [
        # The corrective call: the model's answer and the errors follow.
        [
            {"role": "system", "content": 'Answer with JSON.\n\t"quoted" \\ ✓'},
            {"role": "user", "content": SENTENCES[4]},
            {"role": "assistant", "content": '{"result": "task"}'},
            {"role": "user", "content": 'Your previous answer was rejected:\n- "title"'},
        ],
        # Instructions in the user message (models without a system role).
        [{"role": "user", "content": 'Answer with JSON.\n\n## The sentence\n\nPay "rent"'}],
        # Shapes the cache does not take: other key order, content parts, extra keys.
        [{"content": "Answer with JSON.", "role": "system"}, {"role": "user", "content": "x"}],
        [{"role": "system", "content": [{"type": "text", "text": 'Answer "JSON"'}]}],
        [{"role": "system", "content": "Answer.", "name": "rules"}],
        [],
    ],
)
def test_every_message_list_encodes_as_the_whole_body(messages: list[Any]) -> None:
    head = {**_head(""), "messages": messages}
    for response_format in (None, subtasks_response_schema().json_schema_format):
        data = encode_request(head, response_format)
        whole = dict(head)
        if response_format is not None:
            whole["response_format"] = json.loads(response_format)
        assert data == _reference(whole)
    # The same prompt again comes from the cache, with the same bytes.
    assert encode_request(head, None) == _reference(head)


def test_a_lone_surrogate_is_refused_as_before() -> None:
    head = _head("half a pair \ud83d here")
    with pytest.raises(UnicodeEncodeError):
        _reference(head)
    with pytest.raises(UnicodeEncodeError):
        encode_request(head, subtasks_response_schema().json_schema_format)
    in_prompt = {**head, "messages": [{"role": "system", "content": "rules \udc00"}]}
    with pytest.raises(UnicodeEncodeError):
        encode_request(in_prompt, None)


@pytest.mark.parametrize(
    "temperature", [0.0, 0.3, -0.0, 1e-07, 1.5e300, 2, True, None, 10**30, "0.3"]
)
def test_every_scalar_encodes_as_the_whole_body(temperature: Any) -> None:
    head = {**_head("x"), "temperature": temperature, "max_tokens": temperature}
    assert encode_request(head, None) == _reference(head)


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_infinities_are_refused_as_before(value: float) -> None:
    with pytest.raises(ValueError):
        encode_request({**_head("x"), "temperature": value}, None)


def test_nan_is_refused_as_before() -> None:
    head = {**_head("x"), "temperature": float("nan")}
    with pytest.raises(ValueError):
        encode_request(head, None)


def test_an_empty_head_still_makes_an_object() -> None:
    assert json.loads(encode_request({}, b'{"type":"json_object"}')) == {
        "response_format": {"type": "json_object"}
    }


def test_a_prepared_schema_carries_what_each_call_derived_from_the_schema() -> None:
    config = default_config()
    schema = core_schema(config)
    prepared = ResponseSchema.of(CORE_SCHEMA_NAME, schema)
    assert json.loads(prepared.json_schema_format) == json_schema_format(CORE_SCHEMA_NAME, schema)
    assert json.loads(prepared.json_object_format) == {"type": "json_object", "schema": schema}
    assert prepared.instruction == (
        "\n\nYour reply must be one JSON object that validates against this JSON schema:\n"
        + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    )
    # The bound reserved per call is the one the whole-schema estimate gave.
    messages = _head("Pay rent by Friday")["messages"]
    assert call_bound(messages, prepared, 400) == (
        estimate_prompt_tokens(messages, json.dumps(schema)) + 400
    )


def test_prepared_schemas_are_shared_per_config() -> None:
    config = default_config()
    assert core_response_schema(config) is core_response_schema(default_config())
    other = default_config()
    other.categories.append("garden")
    changed = core_response_schema(other)
    assert changed is not core_response_schema(config)
    task = changed.schema["properties"]["task"]["anyOf"][0]["properties"]
    assert task["category"]["enum"][-1] == "garden"
    assert subtasks_response_schema() is subtasks_response_schema()


@asynccontextmanager
async def _recording() -> AsyncIterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response(chat_completion("{}"))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", bodies
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "none"])
async def test_the_lean_call_sends_what_the_sdk_call_sends(mode: Any) -> None:
    schema = core_response_schema(default_config())
    messages: Any = _head(SENTENCES[4] + SENTENCES[1])["messages"]
    options = CallOptions(response_format=mode)
    async with _recording() as (base_url, bodies):
        async with LLMClient(api_key="k", base_url=base_url, timeout_s=5, pool_size=2) as lean:
            await LLMCaller(lean, "m", options, UsageMeter()).call(
                "core", messages, schema, 0.0, 400
            )
        async with openai.AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0) as sdk:
            await LLMCaller(sdk, "m", options, UsageMeter()).call(
                "core", messages, schema, 0.0, 400
            )
    lean_body, sdk_body = bodies
    assert json.loads(lean_body) == json.loads(sdk_body)
    sent = json.loads(lean_body)
    assert sent["messages"][-1]["content"] == messages[-1]["content"]
    assert lean_body == _reference(sent)
    if mode == "json_schema":
        assert sent["response_format"]["json_schema"]["schema"] == schema.schema
    else:
        assert sent["messages"][0]["content"].endswith(schema.instruction)
