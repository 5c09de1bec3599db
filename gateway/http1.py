"""The gateway's HTTP/1.1 protocol: Sanic's, without the empty ``alt-svc`` header, and
with a stalled request body answered ``408`` rather than ``503``.

Sanic writes ``alt-svc: ""`` into every response head as a placeholder for its TouchUp
pass, which at start either removes that line of code (one HTTP version served) or fills
in the HTTP/3 port. TouchUp rewrites methods of Sanic's shared classes in place, so the
gateway runs without it (``gateway.app``: several apps share a process), and the
placeholder went out on every response as an empty header. An empty ``Alt-Svc`` is no
valid field value (RFC 7838 §3: ``clear`` or at least one alternative) and the gateway
offers no alternative service, so it sends none; a value a handler sets is kept.

Sanic reads a request's body in its handler stage, where only the response timeout
applies: a client that sent its head and then stopped sending the body it announced got
``503 Service Unavailable`` after ``RESPONSE_TIMEOUT``, telling it to retry a request
that was its own to finish. A request still incomplete after ``REQUEST_TIMEOUT`` without
a byte is the client's delay, ``408 Request Timeout`` (RFC 9110 §15.5.9), wherever the
wait happens.

Sanic restarts that clock on every byte received, so a client trickling a byte every few
seconds held a connection and a handler forever (slowloris). ``REQUEST_TIMEOUT`` also bounds
the whole request: its head and body must arrive within it, counted from the request's first
byte (not from the connection's opening, so an idle keep-alive connection's next request gets
the whole bound). Bodies are at most 64 KiB, so Sanic's 60 s asks no honest client for more
than about 1 KiB/s. Past it the answer is the same ``408``, and the connection closes; a body
still arriving after the answer went out (an early ``404``, which Sanic then reads to the end
to keep the connection) is cut off too."""

from __future__ import annotations

import time
from typing import Any

from sanic.compat import Header
from sanic.exceptions import RequestTimeout
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

ALT_SVC = "alt-svc"


class _Headers(Header):
    """Response headers that ignore Sanic's empty ``alt-svc`` placeholder."""

    def __setitem__(self, key: str, value: Any) -> None:
        if value == "" and key.lower() == ALT_SVC:
            return
        super().__setitem__(key, value)


class _Http(Http):
    # When the current request's first byte arrived (time.monotonic), None until it has.
    __slots__ = ("request_began",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_began: float | None = None

    def init_for_request(self) -> None:
        super().init_for_request()
        # A pipelined request's bytes are already here: its clock starts now. Otherwise it
        # starts when its first byte arrives (GatewayProtocol.data_received).
        self.request_began = time.monotonic() if self.recv_buffer else None

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        response = self.response
        if response is not None:
            # The handler (and any cookie) has written its headers by now: the head is
            # formatted from this copy, which drops the placeholder Sanic adds to it.
            response.headers = _Headers(response.headers)
        await super().http1_response_header(data, end_stream)


class GatewayProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with ``_Http`` (``app.create_server(protocol=...)``) and
    the incomplete request's ``408``: stalled, or still arriving ``REQUEST_TIMEOUT`` after
    its first byte."""

    HTTP_CLASS = _Http

    def data_received(self, data: bytes) -> None:
        http = self.http
        if data and isinstance(http, _Http) and http.request_began is None:
            http.request_began = time.monotonic()
        super().data_received(data)

    def check_timeouts(self) -> None:
        http = self._http
        if (
            self._task is not None
            and isinstance(http, _Http)
            and http.request_began is not None
            and (
                http.stage is Stage.REQUEST  # the head is not all received yet
                # or an announced body, before the answer (HANDLER) or while Sanic reads
                # the rest of it after an early answer (IDLE); a streaming answer
                # (RESPONSE) is left to Sanic's RESPONSE_TIMEOUT.
                or (http.stage in (Stage.HANDLER, Stage.IDLE) and http.request_body)
            )
            # time.monotonic is the clock Sanic stamps _time with on every byte received;
            # the request's first byte came no later than its last, so this bound also
            # covers a body that stopped arriving.
            and time.monotonic() - http.request_began > self.request_timeout
        ):
            if http.stage is not Stage.IDLE:
                # Not answered yet: the answer is the 408 (error_response), then close.
                http.exception = RequestTimeout("Request Timeout")
            # The rest of the request will not come: close instead of reading on.
            http.request_body = None
            self._task.cancel()
            return
        super().check_timeouts()
