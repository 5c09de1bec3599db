"""Storage of webhook endpoints and of the transactional outbox (SPEC §5).

``record_job_event`` is the one hook into the job lifecycle: it runs inside
the transaction that makes a job terminal, so an event exists if and only if
the transition committed. The relay later claims outbox rows, publishes them
and deletes them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import webhook_models as wm
from services.tasks.storage import tables as t
from services.tasks.storage.driver import Driver, json_out

ENDPOINTS = t.WebhookEndpoint.__table__
OUTBOX = t.WebhookOutbox.__table__


def new_event_id() -> str:
    """A webhook-id in the usual "msg_" form; random, so it reveals nothing."""
    return f"msg_{uuid.uuid4().hex}"


def _endpoint(row: Any) -> wm.WebhookEndpoint:
    return wm.WebhookEndpoint(row.id, row.user_id, row.url, list(row.events), row.created_at)


async def record_job_event(
    driver: Driver, job_id: str, user_id: str, status: str, now: datetime
) -> int:
    """Writes one outbox row per endpoint of the job's owner subscribed to
    ``"job." + status``. Call inside the transaction of the terminal transition (it runs
    with every job's completion, so straight to the driver, driver.py). Returns the
    number of rows written (0, one indexed read, for users without endpoints)."""
    event_type = f"job.{status}"
    rows = await driver.fetchall(_ENDPOINTS_OF_USER, user_id)
    at = driver.ts(now)
    values = [
        (new_event_id(), endpoint_id, user_id, job_id, event_type, at)
        for endpoint_id, events in rows
        if event_type in (json_out(events) or ())
    ]
    if values:
        await driver.executemany(_INSERT_EVENT, values)
    return len(values)


async def count_endpoints(c: AsyncConnection, user_id: str) -> int:
    query = select(func.count()).select_from(ENDPOINTS).where(ENDPOINTS.c.user_id == user_id)
    return int(await c.scalar(query) or 0)


async def insert_endpoint(
    c: AsyncConnection, user_id: str, url: str, events: list[str], secret: str, now: datetime
) -> wm.WebhookEndpoint:
    endpoint = wm.WebhookEndpoint(str(uuid.uuid4()), user_id, url, list(events), now)
    await c.execute(
        insert(ENDPOINTS).values(
            id=endpoint.id, user_id=user_id, url=url, events=events, secret=secret, created_at=now
        )
    )
    return endpoint


async def list_endpoints(c: AsyncConnection, user_id: str) -> list[wm.WebhookEndpoint]:
    rows = await c.execute(
        select(ENDPOINTS)
        .where(ENDPOINTS.c.user_id == user_id)
        .order_by(ENDPOINTS.c.created_at, ENDPOINTS.c.id)
    )
    return [_endpoint(row) for row in rows]


async def delete_endpoint(c: AsyncConnection, user_id: str, endpoint_id: str) -> bool:
    """Deletes the user's endpoint and its unpublished events. False if the
    user has no such endpoint."""
    result = await c.execute(
        delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id, ENDPOINTS.c.user_id == user_id)
    )
    if result.rowcount != 1:
        return False
    await c.execute(delete(OUTBOX).where(OUTBOX.c.endpoint_id == endpoint_id))
    return True


async def get_target(c: AsyncConnection, endpoint_id: str) -> wm.WebhookTarget | None:
    row = (await c.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))).first()
    return wm.WebhookTarget(_endpoint(row), row.secret) if row is not None else None


async def has_due_events(c: AsyncConnection, now: datetime) -> bool:
    """A cheap read: is there anything for the relay to claim?"""
    return (await c.execute(_ANY_DUE, {"b_now": now})).first() is not None


async def claim_events(
    c: AsyncConnection, now: datetime, lease: timedelta, limit: int, dialect: str
) -> list[wm.OutboxEvent]:
    """Takes up to ``limit`` unclaimed (or lease-expired) events for this relay
    until ``now + lease``. Concurrent relays never take the same row: on
    PostgreSQL the rows are locked with SKIP LOCKED, SQLite has one writer."""
    due = select(OUTBOX.c.id).where(_due(now)).order_by(OUTBOX.c.occurred_at).limit(limit)
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = await c.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + lease)
        .returning(*OUTBOX.c)
    )
    events = [
        wm.OutboxEvent(
            row.id, row.endpoint_id, row.user_id, row.job_id, row.event_type, row.occurred_at
        )
        for row in rows
    ]
    return sorted(events, key=lambda e: e.occurred_at)


async def delete_events(c: AsyncConnection, event_ids: list[str]) -> None:
    if event_ids:
        await c.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(event_ids)))


def _due(now: datetime) -> Any:
    return (OUTBOX.c.claimed_until.is_(None)) | (OUTBOX.c.claimed_until < now)


_ENDPOINTS_OF_USER = "SELECT id, events FROM webhook_endpoints WHERE user_id = $1"
_INSERT_EVENT = (
    "INSERT INTO webhook_outbox (id, endpoint_id, user_id, job_id, event_type, occurred_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
_ANY_DUE = (
    select(OUTBOX.c.id)
    .where((OUTBOX.c.claimed_until.is_(None)) | (OUTBOX.c.claimed_until < bindparam("b_now")))
    .limit(1)
)


class Webhooks:
    """``ports.WebhooksTx``: the endpoint statements above on one connection inside
    its transaction (the outbox functions serve the relay, ``messaging``)."""

    def __init__(self, c: AsyncConnection) -> None:
        self.c = c

    async def count_endpoints(self, user_id: str) -> int:
        return await count_endpoints(self.c, user_id)

    async def insert_endpoint(
        self, user_id: str, url: str, events: list[str], secret: str, now: datetime
    ) -> wm.WebhookEndpoint:
        return await insert_endpoint(self.c, user_id, url, events, secret, now)

    async def list_endpoints(self, user_id: str) -> list[wm.WebhookEndpoint]:
        return await list_endpoints(self.c, user_id)

    async def delete_endpoint(self, user_id: str, endpoint_id: str) -> bool:
        return await delete_endpoint(self.c, user_id, endpoint_id)

    async def get_target(self, endpoint_id: str) -> wm.WebhookTarget | None:
        return await get_target(self.c, endpoint_id)
