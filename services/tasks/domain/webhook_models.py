"""Webhook endpoints and outbox events: plain data (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Event types a client may subscribe to; each is "job." + a terminal job status.
EVENT_TYPES = ("job.succeeded", "job.failed", "job.cancelled")


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    user_id: str
    url: str
    events: list[str]
    created_at: datetime


@dataclass(frozen=True)
class WebhookTarget:
    """What a delivery needs: the endpoint and its signing secret."""

    endpoint: WebhookEndpoint
    secret: str


@dataclass(frozen=True)
class OutboxEvent:
    """One event for one endpoint, waiting to be handed to the broker."""

    #: The webhook-id ("msg_…"), the same on every delivery attempt.
    id: str
    endpoint_id: str
    user_id: str
    job_id: str
    type: str
    occurred_at: datetime
