"""The webhook delivery queue and its messages, shared by the Tasks relay
(publisher) and the delivery consumer in the worker process.

Queues are named after the job queue, so separate deployments (and tests)
on one broker never share them:

- ``<job queue>-webhooks``: events to deliver (durable quorum queue);
- ``<job queue>-webhooks-retry-<N>s``: backoff delay queues, dead-lettered
  back to the main one after their TTL;
- ``<job queue>-webhooks-dlq``: messages over the broker's delivery limit.

A message's body is the exact JSON the endpoint receives; the same body and
webhook-id travel on every retry (Standard Webhooks: receivers deduplicate).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from taskmesh.queue.messages import ATTEMPT_HEADER, UndecodableMessage, attempts_of
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.queue.topology import JobTopology

#: Backoff before retry n (after n failed attempts), seconds: 2·4^(n-1), capped
#: at an hour. With WEBHOOK_MAX_ATTEMPTS=8 an event is tried over about 1.7 h.
RETRY_DELAYS_S = (2, 8, 32, 128, 512, 2048, 3600)
CONTENT_TYPE = "application/json"
#: The endpoint the event goes to.
ENDPOINT_HEADER = "x-taskmesh-endpoint"
#: The job the event is about (for logs).
JOB_HEADER = "x-taskmesh-job"


def webhook_topology(job_queue: str) -> JobTopology:
    return JobTopology(f"{job_queue}-webhooks", policy=RetryPolicy(backoff_s=RETRY_DELAYS_S))


@dataclass(frozen=True)
class WebhookMessage:
    #: The webhook-id, stable across attempts.
    event_id: str
    endpoint_id: str
    event_type: str
    #: The JSON body sent to the endpoint, byte for byte.
    body: bytes
    job_id: str = ""
    #: Failed attempts so far.
    attempts: int = 0
    request_id: str | None = None

    def to_amqp(self) -> aio_pika.Message:
        return aio_pika.Message(
            body=self.body,
            content_type=CONTENT_TYPE,
            type=self.event_type,
            message_id=self.event_id,
            correlation_id=self.request_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
            headers={
                ENDPOINT_HEADER: self.endpoint_id,
                JOB_HEADER: self.job_id,
                ATTEMPT_HEADER: self.attempts,
            },
        )

    def retried(self) -> WebhookMessage:
        return replace(self, attempts=self.attempts + 1)


def decode(message: AbstractIncomingMessage) -> WebhookMessage:
    """Raises UndecodableMessage for anything the relay did not write."""
    headers = message.headers or {}
    endpoint = headers.get(ENDPOINT_HEADER)
    job_id = headers.get(JOB_HEADER)
    if (
        message.content_type != CONTENT_TYPE
        or not message.message_id
        or not isinstance(endpoint, str)
        or not endpoint
    ):
        raise UndecodableMessage("not a webhook event")
    return WebhookMessage(
        event_id=message.message_id,
        endpoint_id=endpoint,
        event_type=message.type or "",
        body=message.body,
        job_id=job_id if isinstance(job_id, str) else "",
        attempts=attempts_of(message),
        request_id=message.correlation_id,
    )
