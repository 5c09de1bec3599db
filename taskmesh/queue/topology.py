"""Queues as typed declarations, named from the main queue:

- ``<queue>``: durable quorum queue; rejected or over-delivered messages are
  dead-lettered to ``<queue>-dlq``; the delivery limit is the last guard
  against a message that crashes every worker that takes it.
- ``<queue>-retry-<N>s``: one delay queue per delay of the RetryPolicy. A message waits
  there for its TTL, then the broker dead-letters it back to ``<queue>``. No
  worker holds a prefetch slot while a job waits for its retry.
- ``<queue>-dlq``: dead letters, inspected and replayed with ``taskmesh dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from taskmesh.queue.retry_policy import RetryPolicy


@dataclass(frozen=True)
class JobTopology:
    queue: str
    #: Redeliveries (crashes, connection losses) before the broker gives up.
    delivery_limit: int = 20
    #: Which delay queues exist; the worker picks among them with the same policy.
    policy: RetryPolicy = RetryPolicy()

    @property
    def dlq(self) -> str:
        return f"{self.queue}-dlq"

    @property
    def retry_delays_s(self) -> tuple[int, ...]:
        return self.policy.delays_s

    def retry_queue_for(self, seconds: float) -> tuple[str, int]:
        """The delay queue for a wait of at least ``seconds``, and its TTL in seconds."""
        ttl = self.policy.queue_delay(seconds)
        return f"{self.queue}-retry-{ttl}s", ttl

    def retry_delay(self, attempt: int) -> int:
        """The backoff step after ``attempt`` failed attempts (>= 1), seconds, without jitter:
        the webhook deliveries' fixed schedule (their policy's steps are their delay queues)."""
        return self.policy.queue_delay(
            self.policy.backoff_s[min(max(attempt, 1), len(self.policy.backoff_s)) - 1]
        )

    def retry_queue(self, attempt: int) -> str:
        """The delay queue of :meth:`retry_delay`."""
        return f"{self.queue}-retry-{self.retry_delay(attempt)}s"

    @property
    def all_queues(self) -> list[str]:
        return [self.queue, self.dlq, *(f"{self.queue}-retry-{d}s" for d in self.retry_delays_s)]

    async def declare(self, channel: AbstractChannel) -> AbstractQueue:
        """Declares every queue (idempotent); returns the main one."""
        await channel.declare_queue(self.dlq, durable=True, arguments={"x-queue-type": "quorum"})
        for delay in self.retry_delays_s:
            await channel.declare_queue(
                f"{self.queue}-retry-{delay}s",
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-message-ttl": delay * 1000,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue,
                },
            )
        return await channel.declare_queue(
            self.queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dlq,
                "x-delivery-limit": self.delivery_limit,
            },
        )

    async def delete(self, channel: AbstractChannel) -> None:
        for name in self.all_queues:
            await channel.queue_delete(name)


def exchange(channel: AbstractChannel) -> aio_pika.abc.AbstractExchange:
    # The default exchange routes by queue name: no bindings to keep in sync.
    return channel.default_exchange
