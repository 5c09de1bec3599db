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
wait happens."""

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
    __slots__ = ()

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        response = self.response
        if response is not None:
            # The handler (and any cookie) has written its headers by now: the head is
            # formatted from this copy, which drops the placeholder Sanic adds to it.
            response.headers = _Headers(response.headers)
        await super().http1_response_header(data, end_stream)


class GatewayProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with ``_Http`` (``app.create_server(protocol=...)``) and
    the stalled body's ``408``."""

    HTTP_CLASS = _Http

    def check_timeouts(self) -> None:
        http = self._http
        if (
            self._task is not None
            and http is not None
            and http.stage is Stage.HANDLER
            and http.request_body  # announced body not all received yet
            # time.monotonic is the clock Sanic stamps _time with on every byte received.
            and time.monotonic() - self._time > self.request_timeout
        ):
            http.exception = RequestTimeout("Request Timeout")
            # The rest of the body will not come: answer and close instead of reading on.
            http.request_body = None
            self._task.cancel()
            return
        super().check_timeouts()
