"""Job states and transitions (services/tasks/domain/lifecycle.py) through the
Tasks domain on the real SQLite and PostgreSQL: withdrawn, cancelled, and one
place where every terminal transition happens."""

from __future__ import annotations

import pytest

from services.tasks.domain import models as m
from services.tasks.domain.lifecycle import TRANSITIONS, JobState, sources
from taskmesh import errors
from tests.tasks.conftest import DRAFT, ESTIMATE, FakeDispatcher, assert_balanced, ledger, reads


class StartedThenLost:
    """A dispatch whose confirm never arrives in time, though the broker delivered
    the job and a worker started it meanwhile."""

    def __init__(self) -> None:
        self.service = None

    async def dispatch(self, job, reservation, timeout):  # type: ignore[no-untyped-def]
        await self.service.start(job.id)
        raise errors.Unavailable()


class NeverConfirmed:
    def __init__(self) -> None:
        self.jobs: list[str] = []

    async def dispatch(self, job, reservation, timeout):  # type: ignore[no-untyped-def]
        self.jobs.append(job.id)
        raise TimeoutError


def test_only_open_states_lead_anywhere_and_only_a_queued_job_can_be_withdrawn():
    for state in JobState:
        reopenable = state is JobState.FAILED  # dead-letter replay
        assert bool(TRANSITIONS[state]) is (not state.terminal or reopenable)
    assert sources(JobState.WITHDRAWN) == ("queued",)
    assert set(sources(JobState.CANCELLED)) == {"queued", "running"}


async def test_a_job_not_confirmed_in_time_is_withdrawn_never_runs_and_is_invisible(env):
    service, user, _, _, _ = env
    service.dispatcher = dispatcher = NeverConfirmed()
    with pytest.raises(TimeoutError):
        await service.create(user, "Pay the water bill tomorrow", idempotency_key="k1")
    [job_id] = dispatcher.jobs
    # The broker delivers it late: the worker is told not to run it.
    started = await service.start(job_id)
    assert started.state is JobState.WITHDRAWN and started.attempts == 0
    with pytest.raises(errors.NotFound):
        await reads(service).get(user, job_id)
    assert (await reads(service).usage(user)).reserved == 0
    assert_balanced(await ledger(service))
    # The client's retry with the same key runs fresh.
    service.dispatcher = FakeDispatcher()
    retry = await service.create(user, "Pay the water bill tomorrow", idempotency_key="k1")
    assert retry.id != job_id and retry.state is JobState.QUEUED


async def test_a_job_a_worker_started_before_the_confirm_timed_out_is_accepted(env):
    service, user, _, _, _ = env
    service.dispatcher = dispatcher = StartedThenLost()
    dispatcher.service = service
    job = await service.create(user, "Pay the water bill tomorrow")
    assert job.state is JobState.RUNNING  # the client gets 202: the job does run
    assert (await reads(service).get(user, job.id)).state is JobState.RUNNING


async def test_cancel_a_queued_job_it_never_runs_and_nothing_stays_reserved(env):
    service, user, other, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    with pytest.raises(errors.NotFound):
        await service.cancel(other, job.id)
    cancelled = await service.cancel(user, job.id)
    assert cancelled.state is JobState.CANCELLED and cancelled.error is None
    assert (await service.start(job.id)).state is JobState.CANCELLED
    assert (await reads(service).usage(user)).reserved == 0
    with pytest.raises(errors.FailedPrecondition):
        await service.cancel(user, job.id)
    assert_balanced(await ledger(service))


async def test_cancel_a_running_job_charges_what_its_run_spent_and_creates_no_task(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    await service.cancel(user, job.id)
    final, applied = await service.complete(job.id, DRAFT, 1234)
    assert not applied and final.state is JobState.CANCELLED and final.task is None
    usage = await reads(service).usage(user)
    assert (usage.used, usage.reserved) == (1234, 0)
    assert_balanced(await ledger(service))


async def test_every_terminal_transition_runs_the_hooks_once_in_its_transaction(env):
    service, user, _, _, clock = env
    seen: list[tuple[str, JobState]] = []

    async def hook(tx, job: m.Job) -> None:  # type: ignore[no-untyped-def]
        assert await tx.jobs.get(job.id) is not None  # inside the transaction
        seen.append((job.id, job.state))

    service.terminal_hooks.append(hook)
    done = await service.create(user, "Pay the water bill tomorrow")
    await service.complete(done.id, DRAFT, 10)
    await service.complete(done.id, DRAFT, 10)  # a repeat changes nothing
    cancelled = await service.create(user, "Book a dentist appointment")
    await service.cancel(user, cancelled.id)
    assert seen == [(done.id, JobState.SUCCEEDED), (cancelled.id, JobState.CANCELLED)]


async def test_a_job_failed_retries_exhausted_reopens_with_a_fresh_reservation(env):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    exhausted = m.JobError(m.ErrorType.RETRIES_EXHAUSTED, "The job failed 5 times")
    await service.complete(job.id, exhausted, 700)
    reopened = await service.reopen(job.id)
    assert reopened.state is JobState.QUEUED and reopened.error is None
    usage = await reads(service).usage(user)
    assert (usage.used, usage.reserved) == (700, ESTIMATE)  # the failed run stays charged
    assert_balanced(await ledger(service))
    done, applied = await service.complete(job.id, DRAFT, 300)
    assert applied and done.state is JobState.SUCCEEDED
    usage = await reads(service).usage(user)
    assert (usage.used, usage.reserved) == (1000, 0)
    assert_balanced(await ledger(service))


async def test_a_job_that_cannot_be_re_run_is_refused_with_the_reason(env):
    service, user, _, _, _ = env
    vague = await service.create(user, "Do the thing")
    await service.complete(vague.id, m.JobError(m.ErrorType.VAGUE_INPUT, "vague"), 10)
    with pytest.raises(errors.FailedPrecondition, match="VAGUE_INPUT"):
        await service.reopen(vague.id)
    running = await service.create(user, "Book a dentist appointment")
    with pytest.raises(errors.FailedPrecondition, match="queued"):
        await service.reopen(running.id)
    with pytest.raises(errors.NotFound):
        await service.reopen("00000000-0000-4000-8000-000000000000")


async def test_a_reopen_without_room_in_the_window_is_refused(env):
    service, user, _, _, _ = env
    failed = await service.create(user, "Pay the water bill tomorrow")
    await service.complete(
        failed.id, m.JobError(m.ErrorType.INTERNAL, "The job failed unexpectedly."), 0
    )
    for n in range(10):  # the window's limit is 10 estimates
        await service.create(user, f"Task number {n}")
    with pytest.raises(errors.ResourceExhausted):
        await service.reopen(failed.id)
    assert (await reads(service).get(user, failed.id)).state is JobState.FAILED
    assert_balanced(await ledger(service))
