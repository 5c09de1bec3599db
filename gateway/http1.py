"""The gateway's HTTP/1.1 protocol: Sanic's, without the empty ``alt-svc`` header.

Sanic writes ``alt-svc: ""`` into every response head as a placeholder for its TouchUp
pass, which at start either removes that line of code (one HTTP version served) or fills
in the HTTP/3 port. TouchUp rewrites methods of Sanic's shared classes in place, so the
gateway runs without it (``gateway.app``: several apps share a process), and the
placeholder went out on every response as an empty header. An empty ``Alt-Svc`` is no
valid field value (RFC 7838 §3: ``clear`` or at least one alternative) and the gateway
offers no alternative service, so it sends none; a value a handler sets is kept."""

from __future__ import annotations

from typing import Any

from sanic.compat import Header
from sanic.http import Http
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
    """Sanic's HTTP/1.1 protocol with ``_Http`` (``app.create_server(protocol=...)``)."""

    HTTP_CLASS = _Http
