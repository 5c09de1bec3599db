"""The delivery consumer against the real RabbitMQ and a real local receiver:
signatures, retries, giving up, the SSRF guard at delivery, deleted
endpoints. The Tasks lookup is an in-process double of TasksTargets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable

import aio_pika
import pytest
from prometheus_client import REGISTRY

from services.tasks.domain.webhooks import new_secret
from services.webhooks.consumer import WebhookConsumer
from services.webhooks.sender import Sender
from services.webhooks.targets import Endpoint
from taskmesh import errors
from taskmesh.queue.webhooks import WebhookMessage, webhook_topology
from tests.webhooks.receiver import Receiver, eventually

pytestmark = pytest.mark.integration


class FakeTargets:
    """TasksTargets' interface over a dict; deleting an entry is deleting the endpoint."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}

    async def get(self, endpoint_id: str, request_id: str | None = None) -> Endpoint:
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise errors.NotFound("webhook endpoint not found") from None


def deliveries(outcome: str) -> float:
    value = REGISTRY.get_sample_value("taskmesh_webhook_deliveries_total", {"outcome": outcome})
    return value or 0.0


Start = Callable[..., "asyncio.Future[WebhookConsumer]"]


@pytest.fixture
async def consumer_factory(rabbitmq_url: str, queue_name: str) -> AsyncIterator[Callable]:
    topology = webhook_topology(queue_name)
    started: list[WebhookConsumer] = []
    connection = await aio_pika.connect(rabbitmq_url, timeout=10)
    channel = await connection.channel(publisher_confirms=True)

    async def start(
        targets: FakeTargets, *, allow_private: bool = True, max_attempts: int = 3
    ) -> Callable[[WebhookMessage], asyncio.Future]:
        consumer = WebhookConsumer(
            rabbitmq_url,
            topology,
            targets,  # type: ignore[arg-type]
            Sender(timeout_s=2.0, allow_private=allow_private),
            max_attempts=max_attempts,
        )
        await consumer.start()
        started.append(consumer)

        async def publish(message: WebhookMessage) -> None:
            await channel.default_exchange.publish(
                message.to_amqp(), routing_key=topology.queue, timeout=10
            )

        return publish

    start.started = started  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for consumer in started:
            await consumer.stop_consuming()
            await consumer.close()
        await topology.delete(channel)
        await connection.close()


def consumer_factory_started(factory: Callable) -> WebhookConsumer:
    """The consumer the factory started last."""
    return factory.started[-1]  # type: ignore[attr-defined]


def event(endpoint_id: str, event_id: str = "msg_test0001") -> WebhookMessage:
    body = json.dumps(
        {"type": "job.succeeded", "timestamp": "2026-01-01T00:00:00.000Z", "data": {"jobId": "j"}}
    ).encode()
    return WebhookMessage(event_id, endpoint_id, "job.succeeded", body)


async def test_an_event_arrives_signed_and_verifiable(consumer_factory) -> None:
    secret = new_secret()
    targets = FakeTargets()
    with Receiver(secret) as receiver:
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url("/in?x=1"), secret)
        publish = await consumer_factory(targets)
        before = deliveries("delivered")
        message = event("e1", "msg_signed")
        await publish(message)
        await eventually(lambda: receiver.received)
        got = receiver.received[0]
        assert got.verified == json.loads(message.body)
        assert got.body == message.body
        assert got.path == "/in?x=1"
        assert got.headers["webhook-id"] == "msg_signed"
        assert got.headers["webhook-signature"].startswith("v1,")
        assert got.headers["content-type"] == "application/json"
        await eventually(lambda: deliveries("delivered") == before + 1)


async def test_retries_keep_the_webhook_id_and_a_valid_signature(consumer_factory) -> None:
    secret = new_secret()
    targets = FakeTargets()
    # Fails twice (a 500, then a 503), then accepts.
    with Receiver(secret, lambda n, r: (500, 503, 204)[min(n, 2)]) as receiver:
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url(), secret)
        publish = await consumer_factory(targets, max_attempts=5)
        retried = deliveries("retried")
        await publish(event("e1", "msg_retried"))
        await eventually(lambda: len(receiver.received) == 3, timeout=60)
        assert {r.webhook_id for r in receiver.received} == {"msg_retried"}
        assert all(r.verified is not None for r in receiver.received)
        assert deliveries("retried") == retried + 2


async def test_an_event_is_given_up_after_the_maximum_attempts(consumer_factory) -> None:
    targets = FakeTargets()
    with Receiver(responder=lambda n, r: 500) as receiver:
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url(), new_secret())
        publish = await consumer_factory(targets, max_attempts=2)
        failed = deliveries("given_up")
        await publish(event("e1", "msg_given_up"))
        await eventually(lambda: deliveries("given_up") == failed + 1, timeout=60)
        assert len(receiver.received) == 2


async def test_a_timeout_counts_as_a_failed_attempt(consumer_factory) -> None:
    targets = FakeTargets()
    with Receiver() as receiver:
        receiver.gate.clear()  # hangs past the sender's 2 s timeout
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url(), new_secret())
        publish = await consumer_factory(targets, max_attempts=1)
        failed = deliveries("given_up")
        await publish(event("e1", "msg_timeout"))
        await eventually(lambda: deliveries("given_up") == failed + 1, timeout=30)


async def test_a_host_that_does_not_resolve_is_a_failed_attempt(consumer_factory) -> None:
    targets = FakeTargets()
    url = "https://hooks.does-not-exist.invalid/in"
    targets.endpoints["e1"] = Endpoint("e1", "u1", url, new_secret())
    publish = await consumer_factory(targets, allow_private=False, max_attempts=1)
    failed = deliveries("given_up")
    await publish(event("e1", "msg_unresolvable"))
    await eventually(lambda: deliveries("given_up") == failed + 1)


async def test_redirects_are_not_followed(consumer_factory) -> None:
    targets = FakeTargets()
    with Receiver(responder=lambda n, r: 307) as receiver:
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url("/first"), new_secret())
        publish = await consumer_factory(targets, max_attempts=1)
        failed = deliveries("given_up")
        await publish(event("e1", "msg_redirect"))
        await eventually(lambda: deliveries("given_up") == failed + 1, timeout=30)
        assert [r.path for r in receiver.received] == ["/first"]


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "localhost", "10.0.0.7", "169.254.169.254", "[::ffff:127.0.0.1]"],
)
async def test_private_addresses_are_refused_at_delivery(consumer_factory, host: str) -> None:
    targets = FakeTargets()
    with Receiver() as receiver:
        # As if registered while allowed, or a name that now resolves elsewhere.
        url = receiver.url().replace("127.0.0.1", host)
        targets.endpoints["e1"] = Endpoint("e1", "u1", url, new_secret())
        targets.endpoints["ok"] = Endpoint("ok", "u1", receiver.url("/ok"), new_secret())
        publish = await consumer_factory(targets, allow_private=False)
        blocked = deliveries("blocked")
        await publish(event("e1", "msg_private"))
        await eventually(lambda: deliveries("blocked") == blocked + 1)
        assert receiver.received == []


async def test_delivery_connects_to_the_address_that_was_checked(
    consumer_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, checked, and that address is
    used; the Host header keeps the name."""
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def resolver(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "hooks.example.test":
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    secret = new_secret()
    targets = FakeTargets()
    with Receiver(secret) as receiver:
        url = f"http://hooks.example.test:{receiver.port}/hook"
        targets.endpoints["e1"] = Endpoint("e1", "u1", url, secret)
        publish = await consumer_factory(targets, allow_private=True)
        await publish(event("e1", "msg_pinned"))
        await eventually(lambda: receiver.received)
        assert receiver.received[0].headers["host"] == f"hooks.example.test:{receiver.port}"
        assert receiver.received[0].verified is not None
        assert lookups == ["hooks.example.test"]


async def test_deleting_an_endpoint_stops_its_pending_retries(consumer_factory) -> None:
    targets = FakeTargets()

    def fail_then_delete(n: int, r: Receiver) -> int:
        targets.endpoints.pop("e1", None)  # deleted while its retry waits
        return 500

    with Receiver(responder=fail_then_delete) as receiver:
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url(), new_secret())
        publish = await consumer_factory(targets, max_attempts=5)
        dropped = deliveries("dropped")
        await publish(event("e1", "msg_deleted"))
        await eventually(lambda: deliveries("dropped") == dropped + 1, timeout=30)
        assert len(receiver.received) == 1


async def test_an_event_in_flight_at_shutdown_is_delivered_by_the_next_consumer(
    consumer_factory,
) -> None:
    """At least once: a consumer stopped mid-attempt leaves the event unacked,
    and the next one delivers it with the same webhook-id."""
    secret = new_secret()
    targets = FakeTargets()
    with Receiver(secret) as receiver:
        receiver.gate.clear()
        targets.endpoints["e1"] = Endpoint("e1", "u1", receiver.url(), secret)
        publish = await consumer_factory(targets)
        first = consumer_factory_started(consumer_factory)
        await publish(event("e1", "msg_shutdown"))
        await eventually(lambda: receiver.waiting >= 1)
        await first.stop_consuming()
        assert not await first.drain(0.1)
        await first.close()

        delivered = deliveries("delivered")
        await consumer_factory(targets)
        await eventually(lambda: receiver.waiting >= 2)  # the redelivery is at the receiver
        receiver.gate.set()
        await eventually(lambda: deliveries("delivered") == delivered + 1)
        assert {r.webhook_id for r in receiver.received} == {"msg_shutdown"}
        assert all(r.verified is not None for r in receiver.received)


def test_delivery_outcomes_are_exported_from_the_start() -> None:
    """SPEC §12: labelled counters exist at zero before the first event."""
    from prometheus_client import generate_latest

    import taskmesh.metrics  # noqa: F401 - registers the families

    text = generate_latest(REGISTRY).decode()
    for outcome in ("delivered", "retried", "given_up", "blocked", "dropped"):
        assert f'taskmesh_webhook_deliveries_total{{outcome="{outcome}"}}' in text
