"""HTTP/1.1 POSTs over a bounded pool of kept-alive connections to one origin (issue 12).

aiohttp's client spent about 300 µs of CPU per chat-completions call in the worker (its request
and response objects, header multidicts, the stream reader, the timer context managers); the
LLM endpoint needs none of that: a POST of a few KB, an answer of a few KB. A connection here is
an :class:`asyncio.Protocol` whose bytes go straight to the ``httptools`` response parser
(llhttp, the parser of Node.js, also what Sanic and uvicorn use); a call is one ``write`` and
one future (``scripts/bench_llm_client.py`` has the figures).

What it keeps of aiohttp's behaviour, so that callers see the same failures:

- a bound on the connections open at once; calls beyond it wait for one;
- TLS through :mod:`asyncio`'s ``ssl`` (the system's trust store by default, the host name
  checked), for ``https`` origins;
- bodies with ``Content-Length``, chunked, or up to the connection's end; ``gzip`` and
  ``deflate`` decoded if a server sends them although ``identity`` was asked for;
- the timeout phases of aiohttp's ``ClientTimeout(connect=t, sock_connect=t, sock_read=t)``:
  waiting for a connection and opening it together within ``t``, then at most ``t`` between
  two reads of the answer (no total bound);
- a POST is never sent twice: a kept-alive connection found closed before the request was
  written is replaced by a fresh one; once bytes were handed to the socket, a connection
  lost is the caller's failure (POST is not idempotent; aiohttp retries only idempotent
  methods). Idle connections are dropped after ``idle_s`` (aiohttp's keep-alive timeout), which
  makes a server's own idle close, and so that failure, rare.

Errors: :class:`TimeoutError` for a phase past its bound; :class:`HttpConnectionError` for
anything else between the sockets (refused, reset, TLS, an unreadable answer).
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

#: Seconds an idle connection is kept (aiohttp's ``keepalive_timeout`` default).
IDLE_S = 15.0


class HttpConnectionError(Exception):
    """The exchange failed between the sockets: connection refused or reset, TLS refused, or
    an answer that is not HTTP/1.x. ``cause``: the underlying exception's type name."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An answer: ``status``, ``headers`` as (name, value) pairs in the order sent (names as
    sent, latin-1 decoded), ``body`` with any content encoding undone."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL's requests go: ``host``, ``port``, ``tls``; ``target`` is the request
    target (path and query) and ``host_header`` the ``Host`` value (port only when not the
    scheme's default). Raises ``ValueError`` for a scheme other than http/https or no host."""

    host: str
    port: int
    tls: bool
    target: str
    host_header: str

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an ``http``/``https`` URL (port defaulting to 80/443, the request
        target as path plus query); raises ``ValueError`` for any other URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        default = 443 if tls else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(
            host=host,
            port=port,
            tls=tls,
            target=target,
            host_header=shown if port == default else f"{shown}:{port}",
        )


class _Connection(asyncio.Protocol):
    """One connection: at most one exchange at a time, its answer parsed as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self._last_read = 0.0
        self._received = False
        self._headers_done = False
        self._done = False
        self._keep_alive = False
        self._framed = False
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._done:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self._keep_alive = False
            self._close()
            return
        self._last_read = self.loop.time()
        self._received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpConnectionError(f"unreadable answer ({type(exc).__name__})"))
            self._close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and not self._framed and exc is None:
            # Neither Content-Length nor chunked: the body ran to the connection's end.
            self._finish(keep_alive=False)
            return
        name = type(exc).__name__ if exc is not None else "ServerDisconnected"
        self._fail(HttpConnectionError(f"connection lost ({name})"))

    # --- httptools callbacks

    def on_message_begin(self) -> None:
        if self._done:
            # A second answer to one request: the connection is not to be trusted again.
            self._keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._done:
            return
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._done:
            return
        self.status = self.parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if not self._done:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._done:
            return
        if 100 <= self.status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self.headers = []
            self._body = []
            self._headers_done = self._framed = False
            return
        self._finish(self.parser.should_keep_alive())

    # --- the exchange

    def send(self, data: bytes, read_timeout: float) -> asyncio.Future[None]:
        """Writes ``data`` (a whole request) and returns the future of its answer."""
        assert self.transport is not None and self._waiter is None
        self._waiter = self.loop.create_future()
        self.status = 0
        self.headers = []
        self._body = []
        self._received = self._headers_done = self._done = self._framed = False
        self._read_timeout = read_timeout
        self._last_read = self.loop.time()
        self._timer = self.loop.call_at(self._last_read + read_timeout, self._check_read)
        self.transport.write(data)
        return self._waiter

    def unsent(self) -> bool:
        """True when the request just given to :meth:`send` never left: the socket refused
        the write at once (a peer that had already reset the connection) and nothing came."""
        return self.transport is None or (self.transport.is_closing() and not self._received)

    def _check_read(self) -> None:
        # One timer per exchange, moved on only when it fires: cheaper than re-arming it
        # for every chunk that arrives.
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        due = self._last_read + self._read_timeout
        if self.loop.time() < due:
            self._timer = self.loop.call_at(due, self._check_read)
            return
        waiter.set_exception(TimeoutError())
        self._close()

    def _finish(self, keep_alive: bool) -> None:
        self._done = True
        self._keep_alive = keep_alive
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def response(self) -> HttpResponse:
        """The answer of the exchange that just ended (its body decoded)."""
        body = b"".join(self._body) if len(self._body) != 1 else self._body[0]
        return HttpResponse(self.status, self.headers, _decoded(body, self.headers))

    def end(self) -> bool:
        """Ends the exchange; True when the connection can carry another one."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiter = None
        reusable = self._done and self._keep_alive and not self.closed
        if not reusable:
            self._close()
        return reusable

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drops the connection at once (no graceful close), its exchange's timer with it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _decoded(body: bytes, headers: list[tuple[str, str]]) -> bytes:
    encoding = ""
    for name, value in headers:
        if name.lower() == "content-encoding":
            encoding = value.strip().lower()
    if not encoding or encoding == "identity" or not body:
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some send it
    except zlib.error as exc:
        raise HttpConnectionError(f"undecodable {encoding} body") from exc
    raise HttpConnectionError(f"unsupported content encoding {encoding!r}")


class HttpPool:
    """POSTs to one URL over at most ``limit`` kept-alive connections.

    ``url``: an http or https URL (its path and query are the request target). ``headers``:
    sent with every request (``Host``, ``Content-Length``, ``Accept-Encoding: identity`` and
    ``Connection: keep-alive`` are added). ``ssl_context``: for https (default: the system
    trust store, host names checked). ``idle_s``: seconds an idle connection is kept. Belongs
    to the event loop it is first used in; :meth:`close` closes its connections. Raises
    ``ValueError`` for a URL that is not http(s), a header that would break the request's
    framing (line breaks, NUL), or one that is not latin-1 (``UnicodeEncodeError``)."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        *,
        limit: int,
        ssl_context: ssl.SSLContext | None = None,
        idle_s: float = IDLE_S,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.origin = Origin.of(url)
        self.limit = limit
        self.idle_s = idle_s
        self._ssl: ssl.SSLContext | None = None
        if self.origin.tls:
            self._ssl = ssl_context or ssl.create_default_context()
        lines = [f"POST {self.origin.target} HTTP/1.1", f"Host: {self.origin.host_header}"]
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
                raise ValueError(f"header {name!r} cannot be sent (line breaks, NUL or ':')")
            if name.lower() not in ("host", "content-length", "connection", "accept-encoding"):
                lines.append(f"{name}: {value}")
        lines += ["Accept-Encoding: identity", "Connection: keep-alive", "Content-Length: "]
        self._head = "\r\n".join(lines).encode("latin-1")
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open or being opened now."""
        return self._open

    async def post(self, body: bytes, timeout_s: float) -> HttpResponse:
        """POSTs ``body`` and returns the answer (any status). ``timeout_s``: seconds for a
        connection (waiting for one and opening it), then between two reads of the answer.
        Raises :class:`TimeoutError` or :class:`HttpConnectionError`."""
        data = self._head + b"%d\r\n\r\n" % len(body) + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        conn = await self._acquire(loop, deadline)
        waiter = conn.send(data, timeout_s)
        if conn.reused and conn.unsent():
            # The server had closed this kept-alive connection and the request never left:
            # sending it on a fresh one (in the same room) cannot make it twice.
            conn.abort()
            conn = await self._connect(loop, deadline, counted=True)
            waiter = conn.send(data, timeout_s)
        try:
            await waiter
            response = conn.response()
        except BaseException:
            conn.abort()
            self._hand_on(None)
            raise
        self._hand_on(conn if conn.end() else None)
        return response

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        if not self._waiting:
            now = loop.time()
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and now - conn.idle_since < self.idle_s:
                    conn.reused = True
                    return conn
                conn.abort()
                self._open -= 1
            if self._open < self.limit:
                return await self._connect(loop, deadline)
        # First come, first served: a connection released, or the room of one closed, is
        # handed to the longest waiting call.
        turn: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout_at(deadline):
                handed = await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._hand_on(turn.result())
            else:
                turn.cancel()
            raise
        if handed is None:
            return await self._connect(loop, deadline, counted=True)
        handed.reused = True
        return handed

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, deadline: float, *, counted: bool = False
    ) -> _Connection:
        """A new connection; ``counted``: its room in the bound is already taken (handed
        over, or the room of the connection it replaces)."""
        if not counted:
            self._open += 1
        conn = _Connection(loop)
        try:
            async with asyncio.timeout_at(deadline):
                await loop.create_connection(
                    lambda: conn,
                    self.origin.host,
                    self.origin.port,
                    ssl=self._ssl,
                    server_hostname=self.origin.host if self._ssl is not None else None,
                )
        except BaseException as exc:
            conn.abort()
            self._hand_on(None)
            if isinstance(exc, OSError):  # refused, unreachable, TLS (ssl.SSLError)
                raise HttpConnectionError(f"cannot connect ({type(exc).__name__})") from exc
            raise
        return conn

    def _hand_on(self, conn: _Connection | None) -> None:
        """Gives ``conn`` (a connection done with an exchange, or None: the room of one that
        closed) to the longest waiting call, else keeps it idle (or frees the room)."""
        if conn is not None and (conn.closed or self._closed):
            conn.abort()
            conn = None
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            conn.idle_since = conn.loop.time()
            self._idle.append(conn)

    async def close(self) -> None:
        """Closes the idle connections; those in use close when their exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.abort()
            self._open -= 1
