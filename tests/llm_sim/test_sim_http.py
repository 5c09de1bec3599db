"""The simulator's HTTP/1.1 server (``llm_sim/http.py``) as its clients use it: keep-alive
connections from aiohttp, httpx and the ``openai`` SDK, pipelined and chunked requests, and
the answers to requests it does not serve."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx
import openai

from llm_sim import SimOptions, SimServer
from scripts.bench_peer.sentences import sentence
from tests.llm_sim.golden import REFERENCE_TIMES, load, messages

NOW = REFERENCE_TIMES[0]


def _body(n: int) -> dict[str, Any]:
    return {"model": "m", "messages": messages("core", sentence(n), NOW)}


def _golden(n: int) -> str:
    return load()[NOW.isoformat()]["core"][n]


async def _raw(server: SimServer, data: bytes) -> bytes:
    """Sends ``data`` on a new connection and reads until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


def _post(path: str, body: bytes, *, close: bool = False, version: str = "1.1") -> bytes:
    head = f"POST {path} HTTP/{version}\r\nHost: sim\r\nContent-Type: application/json\r\n"
    if close:
        head += "Connection: close\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _bodies(raw: bytes) -> list[tuple[int, bytes]]:
    """The (status, body) of each answer in ``raw``, in order (Content-Length framed)."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields["content-length"])
        out.append((int(lines[0].split()[1]), rest[:length]))
        raw = rest[length:]
    return out


async def test_aiohttp_reuses_one_connection_for_many_calls() -> None:
    async with SimServer(SimOptions(), port=0) as server:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            for n in range(5):
                async with http.post(
                    f"{server.base_url}/chat/completions", json=_body(n)
                ) as response:
                    assert response.status == 200
                    answer = await response.json()
                assert answer["choices"][0]["message"]["content"] == _golden(n)
                # One connection carries every call.
                assert server.stats["connections"] == 1
        assert server.stats["calls"] == {"core": 5}


async def test_httpx_keep_alive_and_the_openai_sdk() -> None:
    async with SimServer(SimOptions(), port=0) as server:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=10) as http:
            for n in range(3):
                response = await http.post(f"{server.base_url}/chat/completions", json=_body(n))
                assert response.http_version == "HTTP/1.1"
                assert response.json()["choices"][0]["message"]["content"] == _golden(n)
        sdk = openai.AsyncOpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        async with sdk:
            completion = await sdk.chat.completions.create(
                model="m",
                messages=messages("core", sentence(7), NOW),  # type: ignore[arg-type]
            )
        assert completion.choices[0].message.content == _golden(7)
        assert completion.usage is not None and completion.usage.prompt_tokens > 0


async def test_pipelined_requests_are_answered_in_order() -> None:
    bodies = [json.dumps(_body(n)).encode() for n in range(4)]
    data = b"".join(_post("/v1/chat/completions", b, close=i == 3) for i, b in enumerate(bodies))
    async with SimServer(SimOptions(latency_ms=5, jitter_ms=5, seed=1), port=0) as server:
        answers = _bodies(await _raw(server, data))
    assert [status for status, _ in answers] == [200] * 4
    contents = [json.loads(body)["choices"][0]["message"]["content"] for _, body in answers]
    assert contents == [_golden(n) for n in range(4)]


async def test_chunked_request_body() -> None:
    body = json.dumps(_body(2)).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 100]), body[i : i + 100])
        for i in range(0, len(body), 100)
    )
    data = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    async with SimServer(SimOptions(), port=0) as server:
        [(status, answer)] = _bodies(await _raw(server, data))
    assert status == 200
    assert json.loads(answer)["choices"][0]["message"]["content"] == _golden(2)


async def test_http_1_0_without_keep_alive_is_closed_after_its_answer() -> None:
    body = json.dumps(_body(0)).encode()
    async with SimServer(SimOptions(), port=0) as server:
        # The read ends only because the server closes the connection.
        raw = await _raw(server, _post("/v1/chat/completions", body, version="1.0"))
    assert b"\r\nconnection: close\r\n" in raw.lower()
    assert [status for status, _ in _bodies(raw)] == [200]


async def test_unknown_routes_methods_and_malformed_requests() -> None:
    async with SimServer(SimOptions(), port=0) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            missing = await http.post(f"{server.base_url}/completions", json={})
            wrong = await http.get(f"{server.base_url}/chat/completions")
        garbage = await _raw(server, b"NOT HTTP AT ALL\r\n\r\n")
        assert server.stats["calls"] == {}
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert missing.json()["error"]["type"] == wrong.json()["error"]["type"]
    assert garbage.startswith(b"HTTP/1.1 400 ")


async def test_a_pipelined_request_is_read_from_the_body_it_follows() -> None:
    """Two requests in one segment split mid-body: each gets its own sentence's answer."""
    first, second = (json.dumps(_body(n)).encode() for n in (10, 11))
    data = _post("/v1/chat/completions", first) + _post("/v1/chat/completions", second, close=True)
    async with SimServer(SimOptions(), port=0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        cut = len(data) // 2
        writer.write(data[:cut])
        await writer.drain()
        writer.write(data[cut:])
        raw = await reader.read()
        writer.close()
    contents = [json.loads(b)["choices"][0]["message"]["content"] for _, b in _bodies(raw)]
    assert contents == [_golden(10), _golden(11)]
