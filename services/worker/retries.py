"""Where a failed delivery goes next: a delay queue (transient failure, attempts
left) or the dead-letter queue (undecodable, unknown job, attempts exhausted).

Both are publishes with confirms that happen before the original is acked, so
a broker failure in between leaves the original unacked and redelivered:
at-least-once, never lost."""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from taskmesh import metrics
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import ATTEMPT_HEADER, REASON_HEADER, copy_message, job_message
from taskmesh.queue.topology import JobTopology

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0


class RetryPolicy:
    def __init__(self, channel: AbstractChannel, topology: JobTopology, max_attempts: int) -> None:
        self._channel = channel
        self.topology = topology
        self.max_attempts = max_attempts

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    async def retry_later(
        self,
        job: jobs_pb2.CapabilityJob,
        attempts: int,
        reason: str,
        outcome: bytes | None = None,
        waits: int = 0,
    ) -> None:
        """Parks the job in the delay queue for its backoff step: failed
        attempts, or, while Tasks is away, the number of waits so far."""
        step = max(attempts, waits)
        queue = self.topology.retry_queue(step)
        await self._channel.default_exchange.publish(
            job_message(job, attempts=attempts, reason=reason, outcome=outcome, waits=waits),
            routing_key=queue,
            mandatory=True,
            timeout=PUBLISH_TIMEOUT_S,
        )
        metrics.jobs_retried.labels(reason).inc()
        log.info(
            "retrying in %ss",
            self.topology.retry_delay(step),
            extra={"reason": reason, "attempts": attempts},
        )

    async def dead_letter(
        self, message: AbstractIncomingMessage, reason: str, attempts: int
    ) -> None:
        """Copies the delivery, as it is, to the DLQ with the reason in headers."""
        headers = dict(message.headers or {})
        headers[REASON_HEADER] = reason
        headers[ATTEMPT_HEADER] = attempts
        await self._channel.default_exchange.publish(
            copy_message(message, headers),
            routing_key=self.topology.dlq,
            mandatory=True,
            timeout=PUBLISH_TIMEOUT_S,
        )
        metrics.jobs_dead_lettered.labels(reason.split(":", 1)[0]).inc()
        log.warning("dead-lettered", extra={"reason": reason, "attempts": attempts})
