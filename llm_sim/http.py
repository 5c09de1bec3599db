"""The simulator's HTTP/1.1 server: an asyncio protocol on httptools' parser.

The simulator shares a 2-CPU machine with the systems the benchmark measures, so its CPU per
call counts against them. A call that costs the rules almost nothing (the peer's prompt) took
102 µs of the simulator's CPU on Sanic, with its lifecycle signals, router, request and response
objects, and takes 39 µs on this server (``scripts/bench_llm_sim.py``, interleaved, medians of
3 on a 2-CPU machine). It speaks what its clients
(aiohttp, httpx, the ``openai`` SDK) need: persistent connections (HTTP/1.1 keep-alive, HTTP/1.0
``Connection: keep-alive``), pipelined requests answered in order, ``Content-Length`` and
chunked request bodies, ``Expect: 100-continue``; a request it cannot parse gets ``400`` and
the connection is closed. Bodies are JSON, encoded and decoded by ujson as Sanic did, so the
answers' bytes are those Sanic sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import ujson

__all__ = ["Handler", "HttpServer", "Request", "Response", "json_response"]

log = logging.getLogger(__name__)

_REASONS = {status.value: status.phrase for status in HTTPStatus}


@dataclass(slots=True)
class Request:
    """One request: ``method`` (upper case), ``path`` (without the query), ``body``, and the
    ``headers`` as sent (name, value; bytes)."""

    method: str
    path: str
    body: bytes
    headers: list[tuple[bytes, bytes]]

    def json(self) -> Any:
        """The body decoded as JSON. Raises ``ValueError`` if it is not JSON."""
        return ujson.loads(self.body)


@dataclass(slots=True)
class Response:
    """A complete answer: ``status``, a JSON ``body`` already encoded, extra ``headers``."""

    status: int
    body: bytes
    headers: Mapping[str, str] | None = None


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` encoded as Sanic's ``json`` response encoded it (ujson, ``/`` unescaped)."""
    return Response(status, ujson.dumps(body, escape_forward_slashes=False).encode(), headers)


#: ``request -> response``; an exception it raises becomes a ``500``.
Handler = Callable[[Request], Awaitable[Response]]


def _head(response: Response, close: bool) -> bytes:
    status = response.status
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"content-length: {len(response.body)}",
        "content-type: application/json",
    ]
    if close:
        lines.append("connection: close")
    if response.headers:
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_INTERNAL_ERROR = json_response(
    {"error": {"message": "internal error", "type": "server_error", "param": None, "code": None}},
    500,
)
_BAD_REQUEST = json_response(
    {"error": {"message": "malformed HTTP request", "type": "invalid_request_error",
               "param": None, "code": None}},
    400,
)  # fmt: skip


class _Connection(asyncio.Protocol):
    """One client connection: parses requests, runs them one at a time in arrival order
    (a pipelined request waits for the one before it), writes each answer."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.chunks: list[bytes] = []
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_continue = False
        #: Parsed requests not yet answered, each with whether to keep the connection after it.
        self.waiting: deque[tuple[Request, bool]] = deque()
        self.running: asyncio.Task[None] | None = None
        self.closing = False

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass, but has its methods.
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.waiting.clear()
        if self.running is not None:
            self.running.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail()
        except httptools.HttpParserError:
            self._fail()

    # --- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.chunks = []
        self.headers = []
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if name.lower() == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True

    def on_headers_complete(self) -> None:
        if self.expect_continue and self.transport is not None and not self.waiting:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        method = self.parser.get_method().decode("latin-1")
        request = Request(method, path, body, self.headers)
        self.waiting.append((request, self.parser.should_keep_alive()))
        if self.running is None:
            self._next()

    # --- answering ----------------------------------------------------------------------------

    def _next(self) -> None:
        if self.closing or not self.waiting:
            self.running = None
            return
        request, keep = self.waiting.popleft()
        self.running = asyncio.ensure_future(self._answer(request, keep))

    async def _answer(self, request: Request, keep: bool) -> None:
        try:
            response = await self.server.handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            self.server.errors += 1
            response = _INTERNAL_ERROR
        transport = self.transport
        if transport is None or self.closing:
            return
        transport.write(_head(response, not keep) + response.body)
        if not keep:
            self.closing = True
            transport.close()
        self._next()

    def _fail(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.write(_head(_BAD_REQUEST, True) + _BAD_REQUEST.body)
            self.transport.close()

    def close(self) -> None:
        """Closes the connection once what is written has been sent; a request still being
        answered is cancelled."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()
        if self.running is not None:
            self.running.cancel()


class HttpServer:
    """Serves ``handler`` on a listening socket (see :meth:`start`)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[_Connection] = set()
        #: Requests whose handler raised (answered 500).
        self.errors = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: Any) -> None:
        """Serves on ``sock``, a bound ``socket.socket`` (listening is started here)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock)

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stops listening, gives the requests being answered up to ``grace_s`` seconds to
        finish (their answers are sent), then closes every connection, cancelling what is
        still running."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        running = [c.running for c in self.connections if c.running is not None]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        for connection in list(self.connections):
            connection.close()
        await server.wait_closed()
