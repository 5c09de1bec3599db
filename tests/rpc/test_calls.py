"""The one internal client path (taskmesh.rpc.calls): real grpc.aio servers and
channels on this machine, two hops deep where forwarding is the point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from taskmesh import errors
from taskmesh.logs import bind
from taskmesh.rpc import client, server
from taskmesh.rpc.calls import JOB_ID_KEY, REQUEST_ID_KEY
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

TOKEN = "internal-token-for-tests"
SERVICE = tasks_pb2.DESCRIPTOR.services_by_name["TasksService"].full_name


@dataclass
class Seen:
    """What the servicer observed of each call."""

    metadata: list[dict[str, str]] = field(default_factory=list)
    remaining: list[float | None] = field(default_factory=list)


class Downstream(tasks_pb2_grpc.TasksServiceServicer):
    """Answers GetJob by job id: "missing" → NotFound, "full" → ResourceExhausted."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        self.seen.metadata.append(dict(context.invocation_metadata() or ()))
        self.seen.remaining.append(context.time_remaining())
        if request.job_id == "missing":
            raise errors.NotFound("Job not found.")
        if request.job_id == "full":
            raise errors.ResourceExhausted("Too many requests.", 7, "RATE_LIMITED")
        return tasks_pb2.GetJobResponse(job=tasks_pb2.Job(job_id=request.job_id))

    async def WatchJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        yield tasks_pb2.WatchJobResponse(sequence=1)
        raise errors.FailedPrecondition("Job is over.")


class Relay(tasks_pb2_grpc.TasksServiceServicer):
    """GetJob passed on to the downstream with a generous deadline of its own."""

    def __init__(self, downstream: tasks_pb2_grpc.TasksServiceStub) -> None:
        self.downstream = downstream

    async def GetJob(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self.downstream.GetJob(request, timeout=60.0)


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def start(servicer: Any, token: str = TOKEN) -> tasks_pb2_grpc.TasksServiceStub:
        def register(srv: grpc.aio.Server) -> None:
            tasks_pb2_grpc.add_TasksServiceServicer_to_server(servicer, srv)

        srv, _, port = await server.start_server("127.0.0.1:0", TOKEN, [register], [SERVICE])
        servers.append(srv)
        ch = client.channel(f"127.0.0.1:{port}", token=token)
        channels.append(ch)
        return tasks_pb2_grpc.TasksServiceStub(ch)

    yield start
    for ch in channels:
        await ch.close()
    for srv in servers:
        await srv.stop(None)


async def test_every_call_carries_the_token_and_the_ids_of_the_work(serve: Any) -> None:
    seen = Seen()
    stub = await serve(Downstream(seen))
    with bind(request_id="req-0000-aaaa", job_id="job-0000-bbbb"):
        response = await stub.GetJob(tasks_pb2.GetJobRequest(job_id="a"))
    assert response.job.job_id == "a"
    sent = seen.metadata[0]
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent[REQUEST_ID_KEY] == "req-0000-aaaa"
    assert sent[JOB_ID_KEY] == "job-0000-bbbb"


async def test_an_explicit_request_id_wins_over_the_logging_context(serve: Any) -> None:
    seen = Seen()
    stub = await serve(Downstream(seen))
    with bind(request_id="req-from-context"):
        await stub.GetJob(
            tasks_pb2.GetJobRequest(job_id="a"), metadata=((REQUEST_ID_KEY, "req-explicit-1"),)
        )
    assert seen.metadata[0][REQUEST_ID_KEY] == "req-explicit-1"


async def test_a_call_made_inside_a_handler_gets_what_is_left_of_its_deadline(serve: Any) -> None:
    seen = Seen()
    downstream = await serve(Downstream(seen))
    relay = await serve(Relay(downstream))
    upstream_deadline_s = 3.0
    await relay.GetJob(tasks_pb2.GetJobRequest(job_id="a"), timeout=upstream_deadline_s)
    forwarded = seen.remaining[0]
    # The relay asked for 60 s; the downstream may only have what the caller gave.
    assert forwarded is not None and 0 < forwarded < upstream_deadline_s


async def test_a_call_outside_any_handler_keeps_its_own_deadline(serve: Any) -> None:
    seen = Seen()
    stub = await serve(Downstream(seen))
    await stub.GetJob(tasks_pb2.GetJobRequest(job_id="a"))
    remaining = seen.remaining[0]
    assert remaining is not None
    # The server rebuilds the deadline from the grpc-timeout header in the wire's rounded
    # units, so it may read a few ms over what was set (seen: 5.006 s for 5 s).
    assert client.DEFAULT_TIMEOUT_S / 2 < remaining <= client.DEFAULT_TIMEOUT_S + 0.05


async def test_failures_come_back_as_the_domain_errors_raised_downstream(serve: Any) -> None:
    stub = await serve(Downstream(Seen()))
    with pytest.raises(errors.NotFound) as missing:
        await stub.GetJob(tasks_pb2.GetJobRequest(job_id="missing"))
    assert missing.value.message == "Job not found."
    with pytest.raises(errors.ResourceExhausted) as full:
        await stub.GetJob(tasks_pb2.GetJobRequest(job_id="full"))
    assert full.value.reason == "RATE_LIMITED"
    assert full.value.retry_after_s > 0


async def test_a_forwarded_failure_keeps_its_kind_across_two_hops(serve: Any) -> None:
    downstream = await serve(Downstream(Seen()))
    relay = await serve(Relay(downstream))
    with pytest.raises(errors.NotFound):
        await relay.GetJob(tasks_pb2.GetJobRequest(job_id="missing"))


async def test_a_stream_ends_with_the_domain_error_after_its_messages(serve: Any) -> None:
    stub = await serve(Downstream(Seen()))
    received = []
    with pytest.raises(errors.FailedPrecondition):
        async for message in stub.WatchJob(tasks_pb2.WatchJobRequest(job_id="a")):
            received.append(message.sequence)
    assert received == [1]


async def test_a_refused_internal_token_is_an_internal_error_not_the_users(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stub = await serve(Downstream(Seen()), token="not-the-internal-token")
    with pytest.raises(errors.TaskmeshError) as refused:
        await stub.GetJob(tasks_pb2.GetJobRequest(job_id="a"))
    assert type(refused.value) is errors.TaskmeshError
    assert "internal credentials" in caplog.text


async def test_health_probes_pass_through_untranslated(serve: Any) -> None:
    await serve(Downstream(Seen()))
    # A port with nothing behind it: the probe sees the raw status, as it must.
    ch = client.channel("127.0.0.1:1", token=TOKEN)
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
    finally:
        await ch.close()
