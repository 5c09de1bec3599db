"""Relays webhook events from the Tasks database's outbox to the broker.

Events are written in the transaction that makes a job terminal
(``storage.webhooks.record_job_event``); this loop claims them for a lease,
publishes each with publisher confirms and mandatory routing, and deletes
what the broker confirmed. A crash between the confirm and the delete
publishes an event twice, with the same webhook-id: delivery is at least
once, and receivers deduplicate on that id (Standard Webhooks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from gateway.webhook_schemas import event_body
from services.tasks.storage import webhooks as storage
from services.tasks.storage.repository import Store
from services.tasks.transport import convert
from taskmesh.queue.connection import connect_with_retry
from taskmesh.queue.topology import JobTopology
from taskmesh.queue.webhooks import WebhookMessage
from taskmesh.settings import default

log = logging.getLogger(__name__)

#: Seconds between looks at an empty outbox (a cheap indexed read).
POLL_S = 0.2
#: Seconds a claim lasts: a relay that dies holding rows frees them after this.
LEASE_S = 30.0
BATCH = 100


class WebhookRelay:
    def __init__(
        self,
        store: Store,
        rabbitmq_url: str,
        topology: JobTopology,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        publish_timeout_s: float = default("tasks_relay_publish_timeout_s"),
        connect_timeout_s: float = default("broker_connect_timeout_s"),
    ) -> None:
        self.publish_timeout_s = publish_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.store = store
        self._url = rabbitmq_url
        self.topology = topology
        self.now = clock
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None

    async def _setup(self, connection: AbstractRobustConnection) -> AbstractRobustChannel:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await self.topology.declare(channel)
        return channel

    async def run(self, stop: asyncio.Event) -> None:
        """Relays until ``stop`` is set; connects (with retries) first."""
        try:
            self._connection, self._channel = await connect_with_retry(
                self._url, self._setup, stop, timeout_s=self.connect_timeout_s
            )
        except Exception:
            if stop.is_set():
                return
            raise
        try:
            while not stop.is_set():
                try:
                    relayed = await self.relay_once()
                except Exception:
                    # The database or the broker is away: the rows stay, and are
                    # taken again once their lease ends.
                    log.exception("webhook relay pass failed")
                    relayed = 0
                if relayed < BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), POLL_S)
        finally:
            await self._connection.close()

    async def relay_once(self) -> int:
        """Publishes one batch of due events; returns how many were published."""
        assert self._channel is not None
        now = self.now()
        async with self.store.read() as tx:
            if not await storage.has_due_events(tx.c, now):
                return 0
        async with self.store.write() as tx:
            events = await storage.claim_events(
                tx.c, now, timedelta(seconds=LEASE_S), BATCH, tx.c.dialect.name
            )
        done: list[str] = []
        try:
            async with self.store.read() as tx:
                jobs = {e.job_id: await tx.jobs.get(e.job_id) for e in events}
            for event in events:
                job = jobs.get(event.job_id)
                if job is None:  # withdrawn: there is nothing to tell
                    done.append(event.id)
                    continue
                message = WebhookMessage(
                    event_id=event.id,
                    endpoint_id=event.endpoint_id,
                    event_type=event.type,
                    body=event_body(event.type, event.occurred_at, convert.job_to_proto(job)),
                    job_id=event.job_id,
                    request_id=job.request_id,
                )
                await self._channel.default_exchange.publish(
                    message.to_amqp(),
                    routing_key=self.topology.queue,
                    mandatory=True,
                    timeout=self.publish_timeout_s,
                )
                done.append(event.id)
        finally:
            if done:
                async with self.store.write() as tx:
                    await storage.delete_events(tx.c, done)
        return len(done)
