"""The lean chat-completions transport against a real local HTTP server: every answer and
failure an endpoint can produce ends in the same SDK exception type and the same classification
(SPEC §7) as the openai SDK's own call, the request goes to the same URL with the SDK's headers,
and the key is sent only when one is set."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from aiohttp import web

from taskmesh.capabilities.llm_calls import CallFailed, classify
from taskmesh.capabilities.llm_client import LLMClient
from taskmesh.capabilities.llm_transport import Answer, env_proxy

BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "Pay the electricity bill — ☕ tomorrow"}],
    "temperature": 0.0,
    "max_tokens": 50,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Endpoint:
    """A local server whose every request is answered by ``handler``; it records what came."""

    handler: Handler
    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Opened at the end, so handlers that hang are released.
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            {
                "path": request.path_qs,
                "headers": dict(request.headers),
                "json": await request.json(),
            }
        )
        return await self.handler(request)


@asynccontextmanager
async def endpoint(handler: Handler) -> AsyncIterator[Endpoint]:
    ep = Endpoint(handler)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", ep._any)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    ep.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield ep
    finally:
        ep.release.set()
        await runner.cleanup()


def _completion(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "served-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": '{"ok": true}'},
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        **overrides,
    }


async def _lean(base_url: str, body: dict[str, Any], timeout: float = 5.0, **kw: Any) -> Answer:
    async with LLMClient(
        api_key=kw.get("api_key", "k"), base_url=base_url, timeout_s=timeout, pool_size=4
    ) as client:
        return await client.transport.complete(body)


async def _sdk(base_url: str, body: dict[str, Any], timeout: float = 5.0) -> Answer:
    async with openai.AsyncOpenAI(
        api_key="k", base_url=base_url, timeout=timeout, max_retries=0
    ) as client:
        return Answer.from_completion(await client.chat.completions.create(**body))


async def _failure(call: Awaitable[Answer]) -> tuple[type[BaseException], CallFailed]:
    with pytest.raises(openai.OpenAIError) as info:
        await call
    return type(info.value), classify(info.value)


def _same(a: CallFailed, b: CallFailed) -> None:
    assert (a.outcome, a.transient, a.retry_after_s, a.detail, str(a)) == (
        b.outcome,
        b.transient,
        b.retry_after_s,
        b.detail,
        str(b),
    )


async def test_answer_fields_and_request_match_the_sdk() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response(_completion())

    async with endpoint(ok) as ep:
        lean = await _lean(ep.base_url, BODY)
        sdk = await _sdk(ep.base_url, BODY)
    assert lean == sdk
    assert lean.content == '{"ok": true}' and lean.prompt_tokens == 12
    lean_req, sdk_req = ep.requests
    assert lean_req["path"] == sdk_req["path"] == "/v1/chat/completions"
    assert lean_req["json"] == sdk_req["json"] == BODY
    assert lean_req["headers"]["Authorization"] == sdk_req["headers"]["Authorization"]
    assert lean_req["headers"]["Content-Type"] == "application/json"


async def test_missing_usage_and_choices_read_as_absent() -> None:
    async def bare(_: web.Request) -> web.Response:
        return web.json_response({"model": "m", "choices": []})

    async with endpoint(bare) as ep:
        answer = await _lean(ep.base_url, BODY)
    assert answer.content is None and answer.prompt_tokens is None
    assert answer.completion_tokens is None and answer.finish_reason is None


@pytest.mark.parametrize("suffix", ["", "/", "/proxy/v1", "/proxy/v1/?api-version=2024-06-01"])
async def test_base_url_is_joined_like_the_sdk(suffix: str) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response(_completion())

    async with endpoint(ok) as ep:
        base = ep.base_url.removesuffix("/v1") + suffix
        await _lean(base, BODY)
        await _sdk(base, BODY)
    lean_req, sdk_req = ep.requests
    assert lean_req["path"] == sdk_req["path"]


async def test_no_authorization_header_without_a_key() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response(_completion())

    async with endpoint(ok) as ep:
        await _lean(ep.base_url, BODY, api_key=None)
    assert "Authorization" not in ep.requests[0]["headers"]


def _status(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    async def answer(_: web.Request) -> web.Response:
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return answer


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome"),
    [
        (429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}, "rate_limited"),
        (429, "busy", {"retry-after-ms": "1500"}, "rate_limited"),
        (500, {"error": {"message": "json_schema not supported"}}, None, "server_error"),
        (503, "upstream down", {"Retry-After": "2"}, "server_error"),
        (408, {"detail": "too slow"}, None, "server_error"),
        (409, {"error": "conflict"}, None, "server_error"),
        (
            400,
            {"error": {"message": "Invalid model name. See http://10.0.3.4:4000/docs"}},
            None,
            "rejected",
        ),
        (401, {"error": {"message": "bad key sk-abc"}}, None, "rejected"),
        (404, "no such route", None, "rejected"),
        (422, {"detail": "field required"}, None, "rejected"),
    ],
)
async def test_status_failures_match_the_sdk(
    status: int, body: Any, headers: dict[str, str] | None, outcome: str
) -> None:
    async with endpoint(_status(status, body, headers)) as ep:
        lean_type, lean = await _failure(_lean(ep.base_url, BODY))
        sdk_type, sdk = await _failure(_sdk(ep.base_url, BODY))
    assert lean_type is sdk_type
    assert lean.outcome == outcome
    _same(lean, sdk)


@pytest.mark.parametrize(
    "raw",
    ["not json", '["a list"]', '{"choices": [{"message": {"content": 5}}]}'],
)
async def test_unreadable_answers_are_transient_bad_responses(raw: str) -> None:
    async def junk(_: web.Request) -> web.Response:
        return web.Response(status=200, text=raw, content_type="application/json")

    async with endpoint(junk) as ep:
        kind, failure = await _failure(_lean(ep.base_url, BODY))
    assert kind is openai.APIResponseValidationError
    assert failure.outcome == "bad_response" and failure.transient


async def test_a_hanging_endpoint_times_out_like_the_sdk() -> None:
    async def hang(request: web.Request) -> web.Response:
        await ep.release.wait()
        return web.json_response(_completion())

    async with endpoint(hang) as ep:
        lean_type, lean = await _failure(_lean(ep.base_url, BODY, timeout=0.2))
        sdk_type, sdk = await _failure(_sdk(ep.base_url, BODY, timeout=0.2))
    assert lean_type is sdk_type is openai.APITimeoutError
    _same(lean, sdk)
    assert lean.outcome == "timeout" and lean.transient


async def test_a_closed_port_is_a_connection_error_like_the_sdk() -> None:
    # A bound socket that never listens: connections to it are refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        lean_type, lean = await _failure(_lean(base, BODY))
        sdk_type, sdk = await _failure(_sdk(base, BODY))
    assert lean_type is sdk_type is openai.APIConnectionError
    _same(lean, sdk)
    assert lean.outcome == "connection_error" and lean.transient


async def test_the_session_is_shared_and_reopened_after_close() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response(_completion())

    async with endpoint(ok) as ep:
        client = LLMClient(api_key=None, base_url=ep.base_url, timeout_s=5, pool_size=2)
        answers = await asyncio.gather(*(client.transport.complete(BODY) for _ in range(6)))
        await client.close()
        again = await client.transport.complete(BODY)
        await client.close()
    assert all(a.content == '{"ok": true}' for a in [*answers, again])
    assert len(ep.requests) == 7


@pytest.mark.parametrize(
    ("env", "url", "proxy"),
    [
        ({}, "http://llm:8000/v1/chat/completions", None),
        ({"HTTP_PROXY": "http://p:3128"}, "http://llm:8000/v1/chat/completions", "http://p:3128"),
        ({"HTTP_PROXY": "http://p:3128"}, "https://api.example/v1/chat/completions", None),
        ({"https_proxy": "http://p:3128"}, "https://api.example/v1/x", "http://p:3128"),
        ({"ALL_PROXY": "http://p:1"}, "https://api.example/v1/x", "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "llm,.internal"}, "http://llm:8000/x", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": ".internal"}, "http://a.internal/x", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "http://anything/x", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "other"}, "http://llm/x", "http://p:1"),
    ],
)
def test_the_proxy_comes_from_the_environment_once(
    env: dict[str, str], url: str, proxy: str | None
) -> None:
    assert env_proxy(url, env) == proxy
