"""AiDispatcher: concurrent dispatches coalesced into ExecuteCapabilities calls, each caller
hearing its own item's outcome. The AI service here is an in-process double of the real
AiService interface behind the real server bootstrap and internal channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest

from services.tasks.domain import models as m
from services.tasks.transport import ai_client
from services.tasks.transport.ai_client import AiDispatcher
from taskmesh import errors
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.rpc import client, server
from taskmesh.rpc.status import status_of
from tests.support.machine import free_port

TOKEN = "test-token-0123456789"
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
RESERVATION = m.ReservationInfo(tokens=2500, window_start=1705276800)


class FakeAi(ai_pb2_grpc.AiServiceServicer):
    """Answers each item with ``errors_by_job[job_id]``'s status, else accepted. Holds every
    call at ``gate`` while it is set up (``entered`` tells a call arrived)."""

    def __init__(self) -> None:
        self.batches: list[list[ai_pb2.ExecuteCapabilityRequest]] = []
        self.errors_by_job: dict[str, errors.TaskmeshError] = {}
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def ExecuteCapabilities(  # noqa: N802 - gRPC names
        self, request: ai_pb2.ExecuteCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> ai_pb2.ExecuteCapabilitiesResponse:
        self.batches.append(list(request.requests))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        response = ai_pb2.ExecuteCapabilitiesResponse()
        for item in request.requests:
            result = response.results.add()
            error = self.errors_by_job.get(item.job_id)
            if error is None:
                result.response.accepted = True
            else:
                result.error.CopyFrom(status_of(error))
        return response


@pytest.fixture
async def ai():
    fake = FakeAi()
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [lambda s: ai_pb2_grpc.add_AiServiceServicer_to_server(fake, s)], []
    )
    channel = client.channel(f"127.0.0.1:{port}", token=TOKEN)
    try:
        yield fake, AiDispatcher(channel)
    finally:
        if fake.gate is not None:
            fake.gate.set()
        await channel.close()
        await grpc_server.stop(None)


async def queued(dispatcher: AiDispatcher, count: int) -> None:
    """Returns once ``count`` dispatches wait for the next call (each loop turn checked)."""
    while dispatcher.queued < count:
        await asyncio.sleep(0)


def job(job_id: str, text: str = "Pay electricity bill tomorrow") -> m.Job:
    return m.Job(
        id=job_id,
        user_id="user-1",
        state=m.JobState.QUEUED,
        natural_language=text,
        request_id=f"req-{job_id}-0000",
        attempts=0,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.timeout(30)
async def test_a_lone_dispatch_leaves_at_once_with_its_ids_in_the_item(ai) -> None:
    fake, dispatcher = ai
    fake.gate = asyncio.Event()
    lone = asyncio.create_task(dispatcher.dispatch(job("job-1"), RESERVATION, 10))
    # It reached the AI service while its caller still waits: nothing held it back.
    await fake.entered.wait()
    assert not lone.done()
    fake.gate.set()
    await lone
    ((sent,),) = fake.batches
    assert sent.job_id == "job-1" and sent.request_id == "req-job-1-0000"
    assert sent.pattern == ai_pb2.EXECUTION_PATTERN_ASYNC
    assert sent.parse_task.config == default_config()
    assert sent.reservation.tokens == 2500
    assert dict(sent.trace_context) == {}  # tracing is off


@pytest.mark.timeout(30)
async def test_dispatches_arriving_during_a_call_leave_together_in_the_next(ai) -> None:
    fake, dispatcher = ai
    fake.gate = asyncio.Event()
    first = asyncio.create_task(dispatcher.dispatch(job("job-0"), RESERVATION, 10))
    await fake.entered.wait()
    rest = [
        asyncio.create_task(dispatcher.dispatch(job(f"job-{i}"), RESERVATION, 10))
        for i in range(1, 6)
    ]
    await queued(dispatcher, 5)  # behind the first call, which the gate holds
    fake.gate.set()
    await asyncio.gather(first, *rest)
    assert [[r.job_id for r in batch] for batch in fake.batches] == [
        ["job-0"],
        [f"job-{i}" for i in range(1, 6)],
    ]


@pytest.mark.timeout(30)
async def test_each_caller_hears_its_own_items_outcome(ai) -> None:
    fake, dispatcher = ai
    fake.errors_by_job = {
        "job-injection": errors.InjectionDetected(),
        "job-invalid": errors.InvalidInput(
            "invalid input", [errors.FieldViolation("natural_language", "too long")]
        ),
        "job-unavailable": errors.Unavailable("The job queue is unavailable.", retry_after_s=2),
    }
    fake.gate = asyncio.Event()
    blocker = asyncio.create_task(dispatcher.dispatch(job("job-first"), RESERVATION, 10))
    await fake.entered.wait()
    names = ["job-ok", "job-injection", "job-invalid", "job-unavailable"]
    tasks = [asyncio.create_task(dispatcher.dispatch(job(n), RESERVATION, 10)) for n in names]
    await queued(dispatcher, 4)
    fake.gate.set()
    outcomes = await asyncio.gather(blocker, *tasks, return_exceptions=True)
    assert len(fake.batches) == 2 and len(fake.batches[1]) == 4  # one mixed batch
    assert outcomes[:2] == [None, None]
    injection, invalid, unavailable = outcomes[2:]
    assert type(injection) is errors.InjectionDetected
    assert type(invalid) is errors.InvalidInput
    assert invalid.message == "invalid input"
    assert invalid.violations == [errors.FieldViolation("natural_language", "too long")]
    assert type(unavailable) is errors.Unavailable and unavailable.retry_after_s == 2


@pytest.mark.timeout(30)
async def test_a_caller_whose_timeout_passes_hears_unavailable_alone(ai) -> None:
    fake, dispatcher = ai
    fake.gate = asyncio.Event()
    patient = asyncio.create_task(dispatcher.dispatch(job("job-patient"), RESERVATION, 20))
    await fake.entered.wait()
    # Queued behind the held call, with a deadline that passes while it waits.
    with pytest.raises(errors.Unavailable):
        await dispatcher.dispatch(job("job-hasty"), RESERVATION, 0.2)
    assert not patient.done()
    fake.gate.set()
    await patient
    # The hasty item never left: its caller had given up before its batch.
    assert [[r.job_id for r in batch] for batch in fake.batches] == [["job-patient"]]


@pytest.mark.timeout(30)
async def test_the_ai_service_down_is_unavailable_for_every_item() -> None:
    port = free_port()  # nobody listens there
    channel = client.channel(f"127.0.0.1:{port}", token=TOKEN)
    try:
        with pytest.raises(errors.Unavailable):
            await AiDispatcher(channel).dispatch(job("job-1"), RESERVATION, 2)
    finally:
        await channel.close()


def test_a_batch_larger_than_one_message_leaves_in_several_calls() -> None:
    big = "word " * 399  # about 2 KB per item
    items = [
        ai_client._Item(
            ai_pb2.ExecuteCapabilityRequest(
                job_id=f"job-{i}", parse_task={"natural_language": big}
            ),
            0.0,
        )
        for i in range(300)
    ]
    calls = ai_client._calls(items)
    assert len(calls) > 1 and [i for call in calls for i in call] == items
    for call in calls:
        size = ai_pb2.ExecuteCapabilitiesRequest(requests=[i.request for i in call]).ByteSize()
        assert size <= ai_client.MAX_CALL_BYTES <= server.MAX_MESSAGE_BYTES
