"""JSON shapes of the webhook routes and of the events sent to endpoints
(SPEC §5, Standard Webhooks: ``{"type", "timestamp", "data"}``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas import Job, UtcTime, _Model, job_from_proto
from taskmesh.tasks.v1 import tasks_pb2
from taskmesh.webhook_urls import MAX_URL_CHARS, URL_PATTERN

EventType = Literal["job.succeeded", "job.failed", "job.cancelled"]


class CreateWebhookBody(BaseModel):
    """Body of ``POST /api/v1/webhooks``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_CHARS,
        pattern=URL_PATTERN,
        description="http or https; must not resolve to a loopback, private or link-local "
        "address. Redirects are not followed.",
        examples=["https://example.com/hooks/taskmesh"],
    )
    events: list[EventType] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="Event types to receive; all of them when absent.",
    )


class ListWebhooksQuery(BaseModel):
    """Query string of ``GET /api/v1/webhooks``: it takes no parameter (a user has at most
    ten endpoints, listed whole), and refuses an unknown one as the other lists do."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookEndpoint(_Model):
    id: str
    url: str
    events: list[EventType]
    created_at: UtcTime


class WebhookCreated(_Model):
    id: str
    url: str
    events: list[EventType]
    created_at: UtcTime
    secret: str = Field(
        description="Signing secret (`whsec_…`, Standard Webhooks). Shown only in this answer."
    )


class WebhookList(_Model):
    webhooks: list[WebhookEndpoint]


class WebhookEvent(_Model):
    """What an endpoint receives, signed with the headers `webhook-id` (stable
    across retries), `webhook-timestamp` and `webhook-signature` (`v1,…`)."""

    type: EventType
    timestamp: UtcTime
    data: Job


def endpoint_from_proto(endpoint: tasks_pb2.WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=endpoint.endpoint_id,
        url=endpoint.url,
        events=list(endpoint.events),
        created_at=endpoint.create_time.ToDatetime(tzinfo=UTC),
    )


def created_from_proto(response: tasks_pb2.CreateWebhookEndpointResponse) -> WebhookCreated:
    endpoint = endpoint_from_proto(response.endpoint)
    return WebhookCreated(**endpoint.model_dump(), secret=response.secret)


def event_body(event_type: str, timestamp: datetime, job: tasks_pb2.Job) -> bytes:
    """The event's JSON body; ``data`` is the job exactly as ``GET /api/v1/jobs/{id}`` shows it."""
    event = WebhookEvent(type=event_type, timestamp=timestamp, data=job_from_proto(job))
    return event.model_dump_json(by_alias=True).encode()
