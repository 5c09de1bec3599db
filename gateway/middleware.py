"""Per-request cross-cutting concerns: the request id (header, logs), metrics
by route pattern, and one access log line."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from typing import Any

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

from gateway.request_ids import HEADER, request_id_of
from taskmesh import metrics
from taskmesh.logs import request_id_var

access_log = logging.getLogger("gateway.access")

#: Label for requests no route matched: raw paths would make label cardinality unbounded.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: Request) -> str:
    route = request.route
    return route.uri if route is not None else UNMATCHED


def _method_label(request: Request) -> str:
    return request.method if request.method in _METHODS else "OTHER"


async def _on_request(request: Request) -> None:
    if getattr(request.ctx, "started", None) is not None:
        return
    request.ctx.started = time.perf_counter()
    request.ctx.log_token = request_id_var.set(request_id_of(request))


async def _on_response(request: Request, response: BaseHTTPResponse) -> None:
    request_id = request_id_of(request)
    response.headers[HEADER] = request_id
    started: float = getattr(request.ctx, "started", None) or time.perf_counter()
    seconds = time.perf_counter() - started
    route, method, status = route_label(request), _method_label(request), response.status
    # Bounded labels (route patterns, known methods, statuses): bound once per process.
    metrics.labelled(metrics.http_requests, route, method, str(status)).inc()
    metrics.labelled(metrics.http_latency, route, method).observe(seconds)
    access_log.info(
        "request",
        extra={
            "method": method,
            "route": route,
            "status": status,
            "seconds": round(seconds, 6),
            "request_id": request_id,
        },
    )
    token: contextvars.Token[str | None] | None = getattr(request.ctx, "log_token", None)
    if token is not None:
        request.ctx.log_token = None
        # A token from another context (a streaming handler's task) has nothing to undo here.
        with contextlib.suppress(ValueError):
            request_id_var.reset(token)


def install(app: Sanic[Any, Any]) -> None:
    # Highest priority: every other middleware and handler sees the id bound.
    app.register_middleware(_on_request, "request", priority=1000)
    app.register_middleware(_on_response, "response", priority=1000)
