"""A job's LLM calls are admitted against its reservation (SPEC §8, §9): StartJob tops
it up for the first calls, ReserveTokens before further ones, never past the window's
limit; completion replaces the topped-up reservation with the actual usage; every
charge is itemised by its recorded calls (`taskmesh ledger check`). SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.tasks.domain import models as m
from tests.tasks.conftest import DRAFT, ESTIMATE, assert_balanced, ledger, reads

LIMIT = 10 * ESTIMATE


async def job_mismatches(service) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    async with service.store.read() as tx:
        return await tx.ledger.job_mismatches()


def calls(*tokens: int) -> list[m.CallUsage]:
    return [m.CallUsage("core", t, 0) for t in tokens]


async def test_start_tops_up_the_reservation_to_cover_the_first_calls(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    started, admission = await service.start_admitting(job.id, ESTIMATE + 300)
    assert started.state is m.JobState.RUNNING
    assert admission == m.Admission(True, ESTIMATE + 300)
    usage = await reads(service).usage(user)
    assert usage.reserved == ESTIMATE + 300
    assert_balanced(await ledger(service))


async def test_start_within_the_estimate_changes_nothing(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    _, admission = await service.start_admitting(job.id, 1800)
    assert admission == m.Admission(True, ESTIMATE)
    assert (await reads(service).usage(user)).reserved == ESTIMATE


async def test_start_is_refused_a_top_up_the_window_has_no_room_for(env):
    service, user, _, _, _ = env
    jobs = [await service.create(user, f"Pay bill number {i}") for i in range(10)]
    started, admission = await service.start_admitting(jobs[0].id, ESTIMATE + 1)
    # The job still runs: the worker's guard then fails it BUDGET_EXHAUSTED, charged.
    assert started.state is m.JobState.RUNNING
    assert admission == m.Admission(False, ESTIMATE)
    assert (await reads(service).usage(user)).reserved == LIMIT
    assert_balanced(await ledger(service))


async def test_a_job_that_must_not_run_is_not_admitted(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.cancel(user, job.id)
    started, admission = await service.start_admitting(job.id, ESTIMATE + 300)
    assert started.state is m.JobState.CANCELLED
    assert not admission.granted
    assert (await reads(service).usage(user)).reserved == 0


async def test_a_further_call_is_covered_by_a_top_up_while_the_window_has_room(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start_admitting(job.id, ESTIMATE)
    assert await service.reserve_tokens(job.id, ESTIMATE + 1900) == m.Admission(
        True, ESTIMATE + 1900
    )
    # Absolute, not additive: a retried call does not top up twice.
    assert await service.reserve_tokens(job.id, ESTIMATE + 1900) == m.Admission(
        True, ESTIMATE + 1900
    )
    assert (await reads(service).usage(user)).reserved == ESTIMATE + 1900
    assert_balanced(await ledger(service))


@pytest.mark.parametrize("end", ["cancelled", "succeeded", "failed", "withdrawn", "queued"])
async def test_jobs_not_running_are_refused_further_calls(env, end):
    service, user, _, dispatcher, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    if end != "queued":
        await service.start(job.id)
    if end == "cancelled":
        await service.cancel(user, job.id)
    elif end == "succeeded":
        await service.complete(job.id, DRAFT, 100, calls(100))
    elif end == "failed":
        error = m.JobError(m.ErrorType.INVALID_OUTPUT, "bad")
        await service.complete(job.id, error, 100, calls(100))
    elif end == "withdrawn":
        job = await service.create(user, "Buy milk")
        assert await service._withdraw(job.id) is None
    before = await reads(service).usage(user)
    admission = await service.reserve_tokens(job.id, ESTIMATE + 1000)
    assert not admission.granted
    assert await reads(service).usage(user) == before


async def test_concurrent_top_ups_never_push_the_window_past_its_limit(env):
    service, user, _, _, _ = env
    jobs = [await service.create(user, f"Pay bill number {i}") for i in range(8)]
    for job in jobs:
        await service.start_admitting(job.id, ESTIMATE)
    # 8 × 2500 reserved; 5000 left: room for two top-ups of 2000, not eight.
    admissions = await asyncio.gather(
        *(service.reserve_tokens(job.id, ESTIMATE + 2000) for job in jobs)
    )
    assert sum(a.granted for a in admissions) == 2
    usage = await reads(service).usage(user)
    assert usage.used + usage.reserved <= LIMIT
    assert_balanced(await ledger(service))


async def test_completion_replaces_the_topped_up_reservation_with_the_actual_usage(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start_admitting(job.id, ESTIMATE + 400)
    await service.reserve_tokens(job.id, ESTIMATE + 2300)
    error = m.JobError(m.ErrorType.BUDGET_EXHAUSTED, "no room")
    final, applied = await service.complete(job.id, error, 3100, calls(1800, 1300))
    assert applied and final.error is not None
    usage = await reads(service).usage(user)
    assert (usage.used, usage.reserved) == (3100, 0)
    assert_balanced(await ledger(service))
    assert await job_mismatches(service) == []


async def test_a_top_up_lands_in_the_reservations_own_window(env):
    service, user, _, _, clock = env
    job = await service.create(user, "Pay the water bill tomorrow")
    first = await reads(service).usage(user)
    await service.start_admitting(job.id, ESTIMATE)
    clock.now += timedelta(days=1)
    assert (await service.reserve_tokens(job.id, ESTIMATE + 500)).granted
    assert (await reads(service).usage(user)).reserved == 0  # the new window is untouched
    await service.complete(job.id, DRAFT, 2000, calls(1200, 800))
    rows = {row[1]: row for row in await ledger(service)}
    assert rows[first.window_start][2:4] == (2000, 0)
    assert_balanced(list(rows.values()))


async def test_ledger_finds_a_charge_that_differs_from_its_recorded_calls(env):
    service, user, _, _, _ = env
    honest = await service.create(user, "Pay the water bill tomorrow")
    short = await service.create(user, "Buy milk on the way home")
    for job in (honest, short):
        await service.start(job.id)
    await service.complete(honest.id, DRAFT, 1500, calls(900, 600))
    await service.complete(short.id, DRAFT, 1500, calls(900))
    assert await job_mismatches(service) == [(short.id, 1500, 900)]


async def test_a_repeated_completion_records_no_calls_twice(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    await service.complete(job.id, DRAFT, 1500, calls(900, 600))
    _, applied = await service.complete(job.id, DRAFT, 1500, calls(900, 600))
    assert not applied
    assert await job_mismatches(service) == []


async def test_a_late_charge_of_a_cancelled_job_is_itemised_once(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    await service.cancel(user, job.id)
    error = m.JobError(m.ErrorType.INTERNAL, "The job was cancelled.")
    await service.complete(job.id, error, 700, calls(700))
    await service.complete(job.id, error, 700, calls(700))
    assert (await reads(service).usage(user)).used == 700
    assert_balanced(await ledger(service))
    assert await job_mismatches(service) == []
