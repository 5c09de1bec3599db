"""consume → look up the endpoint → send → ack, or retry later.

Each event is handled in its own task, up to the prefetch. A delivery is
acked only once its fate is durable: delivered, given up (counted), dropped
because the endpoint is gone, or re-published (with confirms) to the delay
queue of its next attempt. A failing or slow receiver holds only its own
prefetch slots on a channel of its own, never the worker's job consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from services.webhooks.sender import Result, Sender
from services.webhooks.targets import TasksTargets
from taskmesh import errors, metrics
from taskmesh.logs import bind
from taskmesh.queue.connection import cancel_consumer, connect_with_retry
from taskmesh.queue.in_flight import InFlight
from taskmesh.queue.messages import UndecodableMessage
from taskmesh.queue.topology import JobTopology
from taskmesh.queue.webhooks import WebhookMessage, decode
from taskmesh.settings import default

log = logging.getLogger(__name__)

#: Events in flight per worker process. Each waits at most WEBHOOK_TIMEOUT_S.
CONCURRENCY = 32


class WebhookConsumer:
    def __init__(
        self,
        url: str,
        topology: JobTopology,
        targets: TasksTargets,
        sender: Sender,
        *,
        max_attempts: int,
        concurrency: int = CONCURRENCY,
        publish_timeout_s: float = default("worker_publish_timeout_s"),
        connect_timeout_s: float = default("broker_connect_timeout_s"),
    ) -> None:
        self.publish_timeout_s = publish_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._url = url
        self.topology = topology
        self.targets = targets
        self.sender = sender
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self._connection: AbstractRobustConnection | None = None
        self._publish: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._in_flight = InFlight("webhook")

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self._connection, _ = await connect_with_retry(
            self._url, self._setup, stop, timeout_s=self.connect_timeout_s
        )

    async def _setup(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.concurrency)
        self._publish = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._queue = await self.topology.declare(channel)
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop_consuming(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            await cancel_consumer(self._queue, self._consumer_tag, self.publish_timeout_s)
            self._consumer_tag = None

    async def drain(self, grace_s: float) -> bool:
        """Waits for the events in flight; True if all were handled within ``grace_s``."""
        return await self._in_flight.drain(grace_s)

    async def close(self) -> None:
        await self._in_flight.cancel()
        if self._connection is not None:
            await self._connection.close()  # unacked events return to the queue
        await self.sender.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight.spawn(self._handle(message))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = decode(message)
        except UndecodableMessage:
            log.warning("undecodable webhook message; dead-lettering it")
            await message.reject(requeue=False)
            return
        with bind(request_id=event.request_id, job_id=event.job_id or None):
            try:
                await self._deliver(message, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A broker or code fault: the delivery limit of the queue bounds
                # how often this message can come back.
                log.exception("webhook handling failed; requeueing the event")
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)

    async def _deliver(self, message: AbstractIncomingMessage, event: WebhookMessage) -> None:
        try:
            endpoint = await self.targets.get(event.endpoint_id, event.request_id)
        except errors.NotFound:
            metrics.webhook_deliveries.labels("dropped").inc()
            log.info("webhook endpoint deleted; event dropped", extra=self._about(event))
            await message.ack()
            return
        except errors.Unavailable:
            # Not the receiver's fault: try again later without spending an attempt.
            await self._later(message, event, spend=False)
            return
        result = await self.sender.send(endpoint.url, endpoint.secret, event.event_id, event.body)
        if result is Result.DELIVERED:
            metrics.webhook_deliveries.labels("delivered").inc()
            log.info("webhook delivered", extra=self._about(event))
            await message.ack()
        elif result is Result.BLOCKED:
            metrics.webhook_deliveries.labels("blocked").inc()
            await message.ack()
        elif event.attempts + 1 >= self.max_attempts:
            metrics.webhook_deliveries.labels("given_up").inc()
            log.warning("webhook given up", extra=self._about(event))
            await message.ack()
        else:
            metrics.webhook_deliveries.labels("retried").inc()
            await self._later(message, event, spend=True)

    @staticmethod
    def _about(event: WebhookMessage) -> dict[str, object]:
        return {
            "webhook_id": event.event_id,
            "endpoint_id": event.endpoint_id,
            "attempts": event.attempts + 1,
        }

    async def _later(
        self, message: AbstractIncomingMessage, event: WebhookMessage, *, spend: bool
    ) -> None:
        """Parks the event in the delay queue of its next attempt, then acks."""
        assert self._publish is not None
        retry = event.retried() if spend else event
        queue, ttl = self.topology.retry_queue_for(
            self.topology.policy.backoff(max(retry.attempts, 1))
        )
        await self._publish.default_exchange.publish(
            retry.to_amqp(), routing_key=queue, mandatory=True, timeout=self.publish_timeout_s
        )
        log.info("webhook retry in %ss", ttl, extra=self._about(event))
        await message.ack()
