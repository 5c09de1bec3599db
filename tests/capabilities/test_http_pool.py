"""The LLM calls' own HTTP/1.1 client (taskmesh.capabilities.http_pool) against local servers
that answer byte by byte as a test scripts them: TLS, every body framing and encoding, kept-alive
connections reused within a bound, a POST never sent twice, and every failure raised as the SDK
exception the aiohttp transport raised for it."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from taskmesh.capabilities.http_pool import HttpPool, Origin
from taskmesh.capabilities.llm_client import LLMClient

BODY = {"model": "m", "messages": [{"role": "user", "content": "Pay the bill"}], "max_tokens": 9}
ANSWER = json.dumps(
    {
        "model": "served",
        "choices": [{"finish_reason": "stop", "message": {"content": '{"ok": true}'}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }
).encode()

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A raw TCP server: every connection is handed to ``script``; it counts connections and
    the requests read through :func:`read_request`."""

    script: Script
    url: str = ""
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def read_request(reader: asyncio.StreamReader, server: Server) -> bytes | None:
    """One request's body (None at the connection's end)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    server.requests.append(head + body)
    return body


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yields to the loop until ``condition`` holds (an outcome, never a fixed wait)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def ok_head(length: int | None = None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{framing}{extra}\r\n".encode()


@asynccontextmanager
async def serve(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(script)
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        current = asyncio.current_task()
        assert current is not None
        handlers.add(current)
        try:
            await script(reader, writer, server)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"
    try:
        async with listener:
            yield server
    finally:
        server.release.set()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def keep_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server
) -> None:
    while await read_request(reader, server) is not None:
        writer.write(ok_head(len(ANSWER)) + ANSWER)
        await writer.drain()


def client(url: str, pool_size: int = 4, timeout_s: float = 5.0) -> LLMClient:
    return LLMClient(api_key="k", base_url=url, timeout_s=timeout_s, pool_size=pool_size)


async def call(url: str, timeout_s: float = 5.0) -> str | None:
    async with client(url, timeout_s=timeout_s) as c:
        return (await c.transport.complete(BODY)).content


# --- framing and encodings ----------------------------------------------------------------------


async def test_a_chunked_answer_in_several_writes_is_read_whole() -> None:
    async def chunked(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await read_request(reader, s)
        writer.write(ok_head(extra="Transfer-Encoding: chunked\r\n"))
        for start in range(0, len(ANSWER), 7):
            piece = ANSWER[start : start + 7]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await s.release.wait()

    async with serve(chunked) as server:
        assert await call(server.url) == '{"ok": true}'


async def test_a_gzip_answer_is_decoded() -> None:
    async def gzipped(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await read_request(reader, s)
        packed = gzip.compress(ANSWER)
        writer.write(ok_head(len(packed), "Content-Encoding: gzip\r\n") + packed)
        await writer.drain()
        await s.release.wait()

    async with serve(gzipped) as server:
        assert await call(server.url) == '{"ok": true}'
    assert b"accept-encoding: identity" in server.requests[0].lower()


async def test_an_answer_read_to_the_connections_end_is_whole() -> None:
    async def until_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await read_request(reader, s)
        writer.write(ok_head(extra="Connection: close\r\n") + ANSWER)
        await writer.drain()

    async with serve(until_close) as server:
        assert await call(server.url) == '{"ok": true}'


async def test_a_truncated_answer_is_a_connection_error() -> None:
    async def truncated(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        await read_request(reader, s)
        writer.write(ok_head(len(ANSWER)) + ANSWER[:10])
        await writer.drain()

    async with serve(truncated) as server:
        with pytest.raises(openai.APIConnectionError):
            await call(server.url)


async def test_an_answer_that_is_not_http_is_a_connection_error() -> None:
    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await s.release.wait()

    async with serve(junk) as server:
        with pytest.raises(openai.APIConnectionError):
            await call(server.url)


# --- connections ------------------------------------------------------------------------------------


async def test_kept_alive_connections_are_reused_within_the_bound() -> None:
    async with serve(keep_answering) as server:
        async with client(server.url, pool_size=2) as c:
            for _ in range(3):
                await c.transport.complete(BODY)
            answers = await asyncio.gather(*(c.transport.complete(BODY) for _ in range(8)))
    assert all(a.content == '{"ok": true}' for a in answers)
    assert len(server.requests) == 11
    assert server.connections == 2


async def test_the_pool_never_opens_more_than_its_bound() -> None:
    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        while await read_request(reader, s) is not None:
            await s.release.wait()
            writer.write(ok_head(len(ANSWER)) + ANSWER)
            await writer.drain()

    async with serve(held) as server:
        async with client(server.url, pool_size=3) as c:
            calls = [asyncio.create_task(c.transport.complete(BODY)) for _ in range(7)]
            await wait_until(lambda: len(server.requests) == 3)
            assert server.connections == 3
            server.release.set()
            answers = await asyncio.gather(*calls)
    assert len(answers) == 7 and server.connections == 3


async def test_a_connection_the_server_closed_while_idle_is_not_used() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(ok_head(len(ANSWER)) + ANSWER)  # keep-alive, then closed anyway
        await writer.drain()

    async with serve(once) as server:
        async with client(server.url) as c:
            await c.transport.complete(BODY)
            pool = c.transport._pool
            assert pool is not None
            await wait_until(lambda: pool._idle[0].closed)
            answer = await c.transport.complete(BODY)
    assert answer.content == '{"ok": true}'
    assert len(server.requests) == 2 and server.connections == 2


async def test_a_request_that_never_left_a_dead_connection_is_sent_on_a_fresh_one() -> None:
    async with serve(keep_answering) as server:
        async with client(server.url) as c:
            await c.transport.complete(BODY)
            pool = c.transport._pool
            assert pool is not None
            # The state a kept-alive connection is in when its peer reset it in the same turn
            # as the request: the transport refuses the write, nothing leaves.
            stale = pool._idle[0]
            assert stale.transport is not None
            stale.transport.abort()
            answer = await c.transport.complete(BODY)
    assert answer.content == '{"ok": true}'
    assert len(server.requests) == 2 and server.connections == 2


async def test_a_request_the_server_read_is_never_sent_twice() -> None:
    async def swallow(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        if s.connections == 1:
            await read_request(reader, s)
            writer.write(ok_head(len(ANSWER)) + ANSWER)
            await writer.drain()
        # The kept-alive connection's next request is read and dropped: it may have run.
        await read_request(reader, s)

    async with serve(swallow) as server:
        async with client(server.url) as c:
            await c.transport.complete(BODY)
            with pytest.raises(openai.APIConnectionError):
                await c.transport.complete(BODY)
    assert len(server.requests) == 2 and server.connections == 1


async def test_a_cancelled_call_frees_its_connection() -> None:
    async def first_hangs(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server
    ) -> None:
        if s.connections == 1:
            await read_request(reader, s)
            await s.release.wait()
            return
        await keep_answering(reader, writer, s)

    async with serve(first_hangs) as server:
        async with client(server.url, pool_size=1) as c:
            hanging = asyncio.create_task(c.transport.complete(BODY))
            await wait_until(lambda: len(server.requests) == 1)
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            answer = await c.transport.complete(BODY)
    assert answer.content == '{"ok": true}' and server.connections == 2


async def test_an_answer_that_stops_midway_times_out() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        writer.write(ok_head(len(ANSWER)) + ANSWER[:20])
        await writer.drain()
        await s.release.wait()

    async with serve(stalls) as server:
        with pytest.raises(openai.APITimeoutError):
            await call(server.url, timeout_s=0.2)


# --- TLS ---------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_endpoints_are_reached_over_verified_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    async with serve(keep_answering, tls) as server:
        # Not trusted: the certificate is refused, as aiohttp refused it.
        with pytest.raises(openai.APIConnectionError):
            await call(server.url)
        # Trusted through the variable OpenSSL's default store reads (a private CA's bundle).
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with client(server.url) as c:
            answers = [await c.transport.complete(BODY) for _ in range(3)]
    assert all(a.content == '{"ok": true}' for a in answers)
    # One connection kept for all three (the refused handshake never reached the handler).
    assert len(server.requests) == 3 and server.connections == 1


# --- the rest ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "target", "header"),
    [
        ("http://llm:8000/v1/chat/completions", "llm", 8000, "/v1/chat/completions", "llm:8000"),
        (
            "https://api.example/v1/x?api-version=1",
            "api.example",
            443,
            "/v1/x?api-version=1",
            "api.example",
        ),
        ("http://[::1]:80/x", "::1", 80, "/x", "[::1]"),
        ("http://h", "h", 80, "/", "h"),
    ],
)
def test_the_request_goes_where_the_url_says(
    url: str, host: str, port: int, target: str, header: str
) -> None:
    origin = Origin.of(url)
    assert (origin.host, origin.port, origin.target, origin.host_header) == (
        host,
        port,
        target,
        header,
    )


def test_a_proxy_in_the_environment_keeps_the_aiohttp_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = client("http://llm:8000/v1")
    assert proxied.transport.via_session and proxied.transport.proxy
    monkeypatch.setenv("NO_PROXY", "llm")
    assert not client("http://llm:8000/v1").transport.via_session


async def test_a_proxied_call_goes_through_the_session() -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        async with client(f"http://127.0.0.1:{runner.addresses[0][1]}/v1") as c:
            c.transport.via_session = True
            answer = await c.transport.complete(BODY)
            assert c.transport._session is not None
            assert c.transport._pool is not None and c.transport._pool.open_connections == 0
    finally:
        await runner.cleanup()
    assert answer.content == '{"ok": true}'


def test_a_pool_needs_room_for_one_connection() -> None:
    with pytest.raises(ValueError, match="limit"):
        HttpPool("http://h/x", {}, limit=0)


async def test_waiting_calls_are_served_in_arrival_order() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        while (body := await read_request(reader, s)) is not None:
            if len(s.requests) == 1:
                await s.release.wait()
            answer = json.loads(ANSWER)
            answer["choices"][0]["message"]["content"] = json.loads(body)["messages"][0]["content"]
            raw = json.dumps(answer).encode()
            writer.write(ok_head(len(raw)) + raw)
            await writer.drain()

    async with serve(echo) as server:
        async with client(server.url, pool_size=1) as c:
            order: list[str] = []

            async def one(name: str) -> None:
                body = {**BODY, "messages": [{"role": "user", "content": name}]}
                order.append((await c.transport.complete(body)).content or "")

            first = asyncio.create_task(one("first"))
            await wait_until(lambda: len(server.requests) == 1)
            rest = [asyncio.create_task(one(str(i))) for i in range(5)]
            server.release.set()
            await asyncio.gather(first, *rest)
    assert order == ["first", "0", "1", "2", "3", "4"]


async def test_a_connection_in_use_when_the_pool_closes_is_closed_after_its_answer() -> None:
    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        await read_request(reader, s)
        await s.release.wait()
        writer.write(ok_head(len(ANSWER)) + ANSWER)
        await writer.drain()
        if await reader.read() == b"":
            closed.set()  # the client closed its end

    closed = asyncio.Event()
    async with serve(held) as server:
        pool = HttpPool(server.url, {}, limit=2)
        call_ = asyncio.create_task(pool.post(b"{}", 5.0))
        await wait_until(lambda: len(server.requests) == 1)
        await pool.close()
        server.release.set()
        response = await call_
        async with asyncio.timeout(10):
            await closed.wait()
    assert response.status == 200 and pool.open_connections == 0


@pytest.mark.parametrize("value", ["k\r\nX-Injected: 1", "k\nv", "k\x00"])
def test_a_header_that_would_break_the_request_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        HttpPool("http://h/x", {"Authorization": value}, limit=1)


def test_a_traced_process_keeps_the_aiohttp_session_for_its_spans() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from taskmesh import tracing

    assert not client("http://llm:8000/v1").transport.via_session
    provider = tracing.configure("worker", exporter=InMemorySpanExporter())
    assert provider is not None
    try:
        assert client("http://llm:8000/v1").transport.via_session
    finally:
        tracing.shutdown()
        provider.shutdown()


async def test_bytes_after_the_answer_end_the_connection_not_the_answer() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, s: Server) -> None:
        while await read_request(reader, s) is not None:
            extra = ok_head(2) + b"{}"
            writer.write(ok_head(len(ANSWER)) + ANSWER + extra)
            await writer.drain()

    async with serve(chatty) as server:
        async with client(server.url) as c:
            first = await c.transport.complete(BODY)
            second = await c.transport.complete(BODY)
    assert first.content == second.content == '{"ok": true}'
    assert server.connections == 2  # the first connection was not used again
