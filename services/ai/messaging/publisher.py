"""Publishes CapabilityJobs with publisher confirms and mandatory routing.

A publish returns only once the broker confirmed the message; a nack, a
returned (unroutable) message, a timeout or a lost connection raise
``Unavailable``, so the job is never reported accepted."""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, DeliveryError

from taskmesh import errors, metrics
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.connection import connect_with_retry
from taskmesh.queue.messages import job_message
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import default

log = logging.getLogger(__name__)


class JobPublisher:
    def __init__(
        self,
        url: str,
        topology: JobTopology,
        *,
        connect_timeout_s: float = default("broker_connect_timeout_s"),
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self._url = url
        self.topology = topology
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None

    async def connect(self, stop: asyncio.Event | None = None) -> None:
        """Connects and declares the queues, retrying until the broker is
        ready; reconnection after that is automatic (robust connection)."""
        self._connection, self._channel = await connect_with_retry(
            self._url, self._setup, stop, timeout_s=self.connect_timeout_s
        )

    async def _setup(self, connection: AbstractRobustConnection) -> AbstractRobustChannel:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await self.topology.declare(channel)
        return channel

    @property
    def healthy(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def publish(self, job: jobs_pb2.CapabilityJob, timeout: float) -> None:
        if self._channel is None or not self.healthy:
            raise errors.Unavailable("The job queue is unavailable.", retry_after_s=2)
        try:
            await self._channel.default_exchange.publish(
                job_message(job), routing_key=self.topology.queue, mandatory=True, timeout=timeout
            )
        except (TimeoutError, DeliveryError, AMQPError, OSError, RuntimeError) as exc:
            log.warning("publish not confirmed: %s", type(exc).__name__)
            raise errors.Unavailable("The job queue is unavailable.", retry_after_s=2) from None
        metrics.jobs_published.inc()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
