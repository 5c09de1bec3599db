"""The Tasks domain's test environment: a JobService on the real SQLite and
PostgreSQL with a stand-in dispatcher and a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.queries import JobQueries
from services.tasks.domain.users import UserService
from services.tasks.storage.repository import Store

ESTIMATE = 2500


class FakeDispatcher:
    """Stands in for the AI service: records jobs, or raises what it is told."""

    def __init__(self) -> None:
        self.dispatched: list[str] = []
        self.error: Exception | None = None

    async def dispatch(self, job: m.Job, reservation: m.ReservationInfo, timeout: float) -> None:
        if self.error is not None:
            raise self.error
        self.dispatched.append(job.id)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


DRAFT = m.TaskDraft(
    title="Pay Electricity Bill",
    due_at=datetime(2024, 1, 16, tzinfo=UTC),
    category="finance",
    priority_level="high",
    priority_score=7,
    priority_reason="Late fees.",
    subtasks=["Log In To Portal", "Pay The Amount", "Save The Receipt"],
)


@pytest.fixture
async def env(database_url: str):
    store = Store(database_url)
    await store.open()
    user, _ = await UserService(store).create("alice")
    other, _ = await UserService(store).create("bob")
    clock = Clock(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
    dispatcher = FakeDispatcher()
    policy = JobPolicy(BudgetPolicy(window_s=86_400, limit=10 * ESTIMATE, estimate=ESTIMATE), 900)
    service = JobService(store, dispatcher, policy, clock=clock)
    yield service, user.id, other.id, dispatcher, clock
    await store.close()


def reads(service: JobService) -> JobQueries:
    """The read side over the same store, budget, events and clock as ``service``."""
    return JobQueries(service.store, service.policy.budget, service.events, clock=service.now)


async def ledger(service: JobService) -> list[tuple]:
    async with service.store.read() as tx:
        return await tx.ledger.rows()


def assert_balanced(rows: list[tuple]) -> None:
    for _, _, used, reserved, charged, open_ in rows:
        assert (used, reserved) == (charged, open_)
        assert used >= 0 and reserved >= 0
