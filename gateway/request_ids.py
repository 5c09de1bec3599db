"""The request id of an HTTP request: the client's, when it sent a usable one,
else a fresh UUID. Assigned once and kept on ``request.ctx``."""

from __future__ import annotations

from sanic import Request

from taskmesh.rpc.client import new_request_id, valid_request_id

HEADER = "X-Request-Id"


def request_id_of(request: Request) -> str:
    """Works before any middleware ran too: Sanic answers some protocol
    errors without running request middleware, and they need an id as well."""
    existing: str | None = getattr(request.ctx, "request_id", None)
    if existing is not None:
        return existing
    supplied = request.headers.get(HEADER, "")
    # The id goes into gRPC metadata, AMQP properties and log lines: a value with
    # a trailing newline slips past a "$"-anchored pattern, so printability is
    # checked here too.
    usable = supplied.isascii() and supplied.isprintable() and valid_request_id(supplied)
    request_id = supplied if usable else new_request_id()
    request.ctx.request_id = request_id
    return request_id
