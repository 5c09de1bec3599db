"""Operator endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest
from sanic import HTTPResponse, Request

from gateway.problems import UNAVAILABLE, problem_response
from gateway.responses import json_model
from gateway.routing import Reply, route
from gateway.schemas import HealthStatus
from gateway.state import state

#: Seconds an orchestrator should wait before probing readiness again.
READY_RETRY_AFTER = "5"


@route(
    "get",
    "/healthz",
    "healthz",
    "Liveness.",
    "operations",
    {200: Reply("The process is up.", HealthStatus)},
    authenticated=False,
)
async def healthz(request: Request) -> HTTPResponse:
    return json_model(HealthStatus(status="ok"))


@route(
    "get",
    "/readyz",
    "readyz",
    "Readiness: Tasks and AI answer gRPC health SERVING.",
    "operations",
    {200: Reply("Ready.", HealthStatus)},
    authenticated=False,
    problems=(503,),
)
async def readyz(request: Request) -> HTTPResponse:
    serving = await state(request).health.check()
    if all(serving.values()):
        return json_model(HealthStatus(status="ok"))
    down = sorted(name for name, up in serving.items() if not up)
    return problem_response(
        request,
        UNAVAILABLE,
        f"Not ready: {', '.join(down)} not serving.",
        headers={"Retry-After": READY_RETRY_AFTER},
        extra={"checks": {name: ("ok" if up else "down") for name, up in serving.items()}},
    )


@route(
    "get",
    "/metrics",
    "metrics",
    "Prometheus metrics.",
    "operations",
    {200: Reply("Text exposition format 0.0.4.", content_type="text/plain")},
    authenticated=False,
)
async def metrics(request: Request) -> HTTPResponse:
    return HTTPResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_PLAIN_0_0_4)
