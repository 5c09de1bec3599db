"""OpenTelemetry traces across the hops: gateway HTTP request -> Tasks and AI over gRPC -> the
AMQP message (W3C trace context in its headers) -> the worker, its LLM calls and its
CompleteJob. One submission is one trace.

Off by default. The standard variables turn it on and configure it:

- ``OTEL_TRACES_EXPORTER``: ``otlp`` (OTLP over gRPC) or ``console``; ``none`` keeps it off.
  Unset, tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is set.
- ``OTEL_EXPORTER_OTLP_*`` (endpoint, headers, certificate, timeout…), read by the exporter.
- ``OTEL_SERVICE_NAME`` (default ``taskmesh-<process>``), ``OTEL_RESOURCE_ATTRIBUTES``,
  ``OTEL_TRACES_SAMPLER`` / ``…_ARG``, ``OTEL_SDK_DISABLED`` — as the SDK defines them.

Instrumentation is by the maintained OpenTelemetry packages: grpc (aio client and server),
aio-pika (publish and consume) and aiohttp-client (the openai SDK's transport); the gateway's
Sanic app gets the small middleware below. :func:`configure` is called once per process by
the service bootstrap (``launcher.service``), before any server, channel or connection is
made, since the instrumentations patch their constructors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

# The SDK is imported only when tracing is on: it costs about 0.3 s at every process start.

#: Instrumentations each kind of process needs (the gRPC ones everywhere).
_AMQP = {"ai", "worker", "tasks"}
_LLM_HTTP = {"ai", "worker"}

_instrumentors: list[Any] = []
_tracer: Tracer | None = None


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* variables ask for traces (see the module docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def active() -> bool:
    """Whether :func:`configure` turned tracing on in this process."""
    return _tracer is not None


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {kind!r} (otlp, console)")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, TLS, timeout from OTEL_EXPORTER_OTLP_*


def configure(
    process: str,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] = os.environ,
) -> TracerProvider | None:
    """Turns tracing on for this process when the environment asks for it, or always when
    an ``exporter`` is given (tests pass the SDK's in-memory one; spans are then exported
    synchronously). Returns the provider, or None when tracing stays off.

    ``process``: ``gateway``, ``tasks``, ``ai`` or ``worker``; picks the instrumentations and
    the default service name. Raises ValueError for an unsupported OTEL_TRACES_EXPORTER."""
    global _tracer
    if exporter is None and not enabled(env):
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = env.get("OTEL_SERVICE_NAME") or f"taskmesh-{process}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _instrument(process, provider)
    _tracer = provider.get_tracer("taskmesh")
    return provider


def _instrument(process: str, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )

    instrumentors: list[Any] = [GrpcAioInstrumentorClient(), GrpcAioInstrumentorServer()]
    if process in _AMQP:
        from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor

        instrumentors.append(AioPikaInstrumentor())
    if process in _LLM_HTTP:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

        instrumentors.append(AioHttpClientInstrumentor())
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
            _instrumentors.append(instrumentor)


def shutdown() -> None:
    """Removes the instrumentations (tests; a process simply exits)."""
    global _tracer
    while _instrumentors:
        _instrumentors.pop().uninstrument()
    _tracer = None


# --- work that leaves its caller's context (a batch's items) ----------------------------------


def trace_context() -> dict[str, str]:
    """The W3C trace context (``traceparent``, ``tracestate``) of the current span, for an
    item that travels in a batch sent from another context; empty while tracing is off."""
    if _tracer is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continued(carrier: Mapping[str, str], name: str | None = None) -> Iterator[None]:
    """Runs the block in the trace context ``carrier`` holds (:func:`trace_context`), so what
    the block does stays in the item's own trace: under a new INTERNAL span ``name`` when one
    is given (AI's publish of a batch item), else directly (the calls a batch item makes).
    Nothing while tracing is off or the carrier is empty."""
    if _tracer is None or not carrier:
        yield
        return
    from opentelemetry import context, propagate, trace

    parent = propagate.extract(dict(carrier))
    if name is not None:
        with _tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.INTERNAL):
            yield
        return
    token = context.attach(parent)
    try:
        yield
    finally:
        context.detach(token)


# --- the gateway's HTTP server spans ---------------------------------------------------------


def instrument_sanic(app: Any, route_label: Any) -> None:
    """A server span per HTTP request, current while the handler runs, so the gRPC calls it
    makes are its children. ``route_label(request)`` names the span (the route pattern, never
    the raw path). A no-op while tracing is off."""
    if _tracer is None:
        return
    tracer = _tracer
    from opentelemetry import context, propagate, trace

    async def on_request(request: Any) -> None:
        parent = propagate.extract(dict(request.headers))
        span = tracer.start_span(
            f"{request.method} {route_label(request)}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": request.method,
                "http.route": route_label(request),
                "url.scheme": request.scheme,
            },
        )
        request.ctx.otel_span = span
        request.ctx.otel_token = context.attach(trace.set_span_in_context(span, parent))

    async def on_response(request: Any, response: Any) -> None:
        span = getattr(request.ctx, "otel_span", None)
        if span is None:
            return
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()
        request.ctx.otel_span = None
        token = getattr(request.ctx, "otel_token", None)
        if token is not None:
            context.detach(token)

    # Outside every other middleware, so the span covers them.
    app.register_middleware(on_request, "request", priority=2000)
    app.register_middleware(on_response, "response", priority=2000)
