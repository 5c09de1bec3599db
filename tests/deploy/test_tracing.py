"""OpenTelemetry traces (taskmesh/tracing.py): off unless the OTEL_* variables ask, and, when
on, one submission is one trace through the gateway, Tasks, AI, the AMQP message, the worker
and its LLM calls.

The four services run in this test's event loop, so one SDK in-memory exporter sees every
span (each is a real server: HTTP, gRPC, RabbitMQ, the LLM simulator as a process)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from launcher.stack import LocalStack
from services.ai.domain.execute import ITEM_SPAN
from taskmesh import tracing
from taskmesh.settings import Settings
from tests.support.broker import delete_queues
from tests.support.machine import free_port

TASKS = "/taskmesh.tasks.v1.TasksService/"
AI = "/taskmesh.ai.v1.AiService/"


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_off_unless_the_standard_variables_turn_it_on(env, on) -> None:
    assert tracing.enabled(env) is on


def test_tracing_off_leaves_grpc_and_amqp_uninstrumented() -> None:
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient

    assert tracing.configure("worker", env={}) is None
    assert not GrpcAioInstrumentorClient().is_instrumented_by_opentelemetry


def test_an_unknown_exporter_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        tracing.configure("worker", env={"OTEL_TRACES_EXPORTER": "zipkin"})
    assert not tracing._instrumentors


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    # The worker's instrumentations are the superset (gRPC, aio-pika, aiohttp-client); the
    # gateway's spans come from its Sanic middleware.
    provider = tracing.configure("worker", exporter=memory)
    assert provider is not None
    try:
        yield memory
    finally:
        tracing.shutdown()
        provider.shutdown()


def settings_for(tmp_path: Path, rabbitmq_url: str, queue_name: str, sim_port: int) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db",
        rabbitmq_url=rabbitmq_url,
        job_queue=queue_name,
        gateway_port=free_port(),
        tasks_grpc_addr=f"127.0.0.1:{free_port()}",
        ai_grpc_addr=f"127.0.0.1:{free_port()}",
        openai_base_url=f"http://127.0.0.1:{sim_port}/v1",
        internal_auth_token=secrets.token_urlsafe(24),
        taskmesh_dev_api_key="tm_" + secrets.token_urlsafe(32),
        tasks_metrics_port=0,
        ai_metrics_port=0,
        worker_metrics_port=0,
        shutdown_grace_s=5,
    )


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    stack = LocalStack({"LLM_SIM_PORT": str(port)}, ["llm-sim"], log_dir=tmp_path / "logs")
    stack.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            stack.check_alive()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
        yield port
    finally:
        stack.stop(10)


async def run_one_job(settings: Settings) -> str:
    """Starts tasks, ai, worker and gateway in this loop, submits one sentence, waits for its
    job to succeed, stops everything; returns the job id."""
    from gateway.main import run as gateway
    from services.ai.main import run as ai
    from services.tasks.main import run as tasks
    from services.worker.main import run as worker

    stop = asyncio.Event()
    running = []
    try:
        for service in (tasks, ai, worker, gateway):
            ready = asyncio.Event()
            running.append(asyncio.create_task(service(settings, stop, ready)))
            await asyncio.wait_for(ready.wait(), 60)
        assert settings.taskmesh_dev_api_key is not None
        key = settings.taskmesh_dev_api_key.get_secret_value()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.gateway_port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ) as http:
            response = await http.post(
                "/api/v1/tasks",
                json={"naturalLanguage": "Book a dentist appointment for a check-up tomorrow"},
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["jobId"]
            deadline = time.monotonic() + 60
            while (status := (await http.get(f"/api/v1/jobs/{job_id}")).json()["status"]) not in (
                "succeeded",
                "failed",
            ):
                assert time.monotonic() < deadline, "the job did not finish"
                await asyncio.sleep(0.05)
            assert status == "succeeded"
        return job_id
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 60)


def describe(spans: list[ReadableSpan]) -> str:
    """The trace as an indented tree of span names (printed with -s)."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            lines.append(f"{'  ' * depth}{span.name} [{span.kind.name.lower()}]")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines)


@pytest.mark.e2e
async def test_one_submission_is_one_trace_across_gateway_tasks_ai_and_worker(
    exporter, simulator, tmp_path, rabbitmq_url, queue_name
) -> None:
    settings = settings_for(tmp_path, rabbitmq_url, queue_name, simulator)
    try:
        await run_one_job(settings)
    finally:
        await delete_queues(rabbitmq_url, queue_name)

    spans = list(exporter.get_finished_spans())
    (submit,) = [s for s in spans if s.name == "POST /api/v1/tasks"]
    trace_id = submit.context.trace_id
    trace = [s for s in spans if s.context.trace_id == trace_id]
    print("\n" + describe(trace))
    names = {s.name for s in trace}

    # gateway -> Tasks (auth, create: a batch of one) -> AI (validate, screen, publish). Tasks
    # dispatches in ExecuteCapabilities calls shared by many submissions (a trace of their
    # own); the job's item carries its trace context, and AI publishes it under a span of
    # this trace.
    assert submit.kind == SpanKind.SERVER and submit.parent is None
    assert f"{TASKS}CreateTasks" in names
    (item,) = [s for s in trace if s.name == ITEM_SPAN]
    assert any(s.name == f"{AI}ExecuteCapabilities" for s in spans)
    # -> the AMQP message: published by AI, consumed by the worker, context in its headers
    (publish,) = [s for s in trace if s.kind == SpanKind.PRODUCER]
    assert publish.parent.span_id == item.context.span_id
    consumers = [s for s in trace if s.kind == SpanKind.CONSUMER]
    assert consumers and all(c.parent.span_id == publish.context.span_id for c in consumers)
    # -> the worker: StartJob, the two LLM calls (core and subtasks), CompleteJob on Tasks
    assert {f"{TASKS}StartJob", f"{TASKS}CompleteJob"} <= names
    llm_calls = [
        s
        for s in trace
        if s.kind == SpanKind.CLIENT
        and "chat/completions"
        in str(s.attributes.get("url.full", s.attributes.get("http.url", "")))
    ]
    assert len(llm_calls) == 2, describe(trace)
    # Every span hangs off the HTTP request: one tree, no orphans.
    ids = {s.context.span_id for s in trace}
    assert all(s.parent is None or s.parent.span_id in ids for s in trace)
    assert [s for s in trace if s.parent is None] == [submit]
    # The polling GETs are traces of their own.
    assert all(
        s.context.trace_id != trace_id for s in spans if s.name.startswith("GET /api/v1/jobs")
    )
