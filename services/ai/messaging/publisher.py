"""Publishes CapabilityJobs with publisher confirms and mandatory routing.

A publish returns only once the broker confirmed the message; a nack, a
returned (unroutable) message, a timeout or a lost connection raise
``Unavailable``, so the job is never reported accepted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import AMQPError, DeliveryError
from aiormq.channel import Channel
from pamqp import commands as spec

from services.ai.messaging.batch_frames import fits, publish_frames
from taskmesh import errors, metrics
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.connection import connect_with_retry
from taskmesh.queue.messages import (
    ATTEMPT_HEADER,
    CONTENT_TYPE,
    MESSAGE_TYPE,
    WAITS_HEADER,
    job_message,
)
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
            raise _unavailable() from None
        metrics.jobs_published.inc()

    async def publish_many(
        self, jobs: Sequence[jobs_pb2.CapabilityJob], timeout: float
    ) -> list[errors.Unavailable | None]:
        """:meth:`publish` of each job, together: every message leaves in one socket write
        (``batch_frames``) and the confirms are awaited together, at most ``timeout``
        seconds. One entry per job, in order: None once the broker confirmed it, else
        Unavailable (nacked, returned, not confirmed in time, channel lost)."""
        if not jobs:
            return []
        if self._channel is None or not self.healthy:
            return [_unavailable() for _ in jobs]
        deadline = asyncio.get_running_loop().time() + timeout
        now = datetime.now(UTC)
        messages = [(job.SerializeToString(), job_properties(job, now)) for job in jobs]
        try:
            async with asyncio.timeout_at(deadline):
                channel = await self._channel.get_underlay_channel()
                if not isinstance(channel, Channel) or not all(
                    fits(channel, body) for body, _ in messages
                ):
                    # Not the channel (or a body larger than a frame) this path is written
                    # for: one publish per job, as the unary call does.
                    return list(
                        await asyncio.gather(*(self._publish_one(job, timeout) for job in jobs))
                    )
                confirmations = await publish_frames(channel, self.topology.queue, messages)
        except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
            for job in jobs:
                _not_confirmed(job, exc)
            return [_unavailable() for _ in jobs]
        try:
            await asyncio.wait(
                confirmations, timeout=max(0.0, deadline - asyncio.get_running_loop().time())
            )
        finally:
            # Not confirmed in time (or the call was cancelled): its confirm, should it
            # come, is dropped (as basic_publish's cancelled wait drops it).
            for confirmation in confirmations:
                confirmation.cancel()
        outcomes: list[errors.Unavailable | None] = []
        for job, confirmation in zip(jobs, confirmations, strict=True):
            failure = TimeoutError() if confirmation.cancelled() else confirmation.exception()
            if failure is None:
                outcomes.append(None)
            else:
                _not_confirmed(job, failure)
                outcomes.append(_unavailable())
        metrics.jobs_published.inc(sum(outcome is None for outcome in outcomes))
        return outcomes

    async def _publish_one(
        self, job: jobs_pb2.CapabilityJob, timeout: float
    ) -> errors.Unavailable | None:
        try:
            await self.publish(job, timeout)
        except errors.Unavailable as exc:
            return exc
        return None

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


def job_properties(job: jobs_pb2.CapabilityJob, now: datetime) -> spec.Basic.Properties:
    """The AMQP properties ``taskmesh.queue.messages.job_message(job).properties`` gives a
    first delivery stamped ``now`` (tested equal), built without an ``aio_pika.Message``."""
    return spec.Basic.Properties(
        content_type=CONTENT_TYPE,
        correlation_id=job.request_id or None,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={ATTEMPT_HEADER: 0, WAITS_HEADER: 0},
        message_id=job.job_id,
        message_type=MESSAGE_TYPE,
        priority=0,  # aio_pika.Message's default
        timestamp=now,
    )


def _unavailable() -> errors.Unavailable:
    return errors.Unavailable("The job queue is unavailable.", retry_after_s=2)


def _not_confirmed(job: jobs_pb2.CapabilityJob, exc: BaseException) -> None:
    """The unary publish's warning, with the job's ids as the line's own fields."""
    log.warning(
        "publish not confirmed: %s",
        type(exc).__name__,
        extra={"job_id": job.job_id, "request_id": job.request_id or None},
    )
