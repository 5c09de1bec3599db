"""The accept path's batch statements on the real SQLite and PostgreSQL: jobs, their
reservation records and their dispatches written for many jobs at once, read back as
one at a time would have written them; a taken Idempotency-Key fails the whole batch
and leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.tasks.domain import models as m
from services.tasks.domain.jobs import CompleteItem, Submission
from services.tasks.domain.ports import DuplicateKey
from tests.tasks.conftest import DRAFT, ESTIMATE, assert_balanced, ledger

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
WINDOW = 1_705_276_800


async def test_many_jobs_and_their_reservations_are_written_at_once(env):
    service, user, other, _, _ = env
    reservation = m.ReservationInfo(ESTIMATE, WINDOW)
    new = [
        m.NewJob(user, "Book the dentist", "req-0000000001"),
        m.NewJob(other, "Water the plants", None, "key-1"),
        m.NewJob(user, "Call mum", "req-0000000003"),
    ]
    async with service.store.write() as tx:
        for job in new:
            assert await tx.ledger.reserve(job.user_id, WINDOW, ESTIMATE, 10 * ESTIMATE)
        created = await tx.jobs.insert_many(new, now=NOW, deadline=NOW + timedelta(minutes=15))
        await tx.ledger.open_many([(job.id, job.user_id) for job in created], reservation)
        await tx.jobs.mark_dispatched_many([created[0].id, created[1].id], NOW)
    async with service.store.read() as tx:
        stored = [await tx.jobs.get(job.id) for job in created]
        keyed = await tx.jobs.by_idempotency_key(other, "key-1")
        held = [await tx.ledger.reserved_tokens(job.id) for job in created]
    assert [(j.user_id, j.natural_language, j.request_id) for j in stored if j] == [
        (n.user_id, n.text, n.request_id) for n in new
    ]
    assert all(j is not None and j.state is m.JobState.QUEUED for j in stored)
    assert [j.dispatched_at is not None for j in stored if j] == [True, True, False]
    assert keyed is not None and keyed.id == created[1].id
    assert held == [ESTIMATE] * 3
    assert_balanced(await ledger(service))


async def test_a_taken_key_fails_the_batch_and_leaves_nothing(env):
    service, user, _, _, _ = env
    async with service.store.write() as tx:
        await tx.jobs.insert_many(
            [m.NewJob(user, "Buy milk", None, "key-taken")], now=NOW, deadline=NOW
        )
    with pytest.raises(DuplicateKey):
        async with service.store.write() as tx:
            await tx.jobs.insert_many(
                [m.NewJob(user, "Free errand"), m.NewJob(user, "Buy milk", None, "key-taken")],
                now=NOW,
                deadline=NOW,
            )
    async with service.store.read() as tx:
        jobs, total = await tx.jobs.page(m.JobQuery(user_id=user, take=10))
    assert total == 1 and jobs[0].natural_language == "Buy milk"


async def test_create_many_reserves_in_order_and_refuses_only_past_the_limit(env):
    service, user, other, dispatcher, _ = env
    limit = service.policy.budget.limit // ESTIMATE
    outcomes = await service.create_many(
        [Submission(user, f"Errand {n}") for n in range(limit + 1)]
        + [Submission(other, "Someone else's errand")]
    )
    assert [isinstance(o, m.Job) for o in outcomes] == [True] * limit + [False, True]
    assert len(dispatcher.dispatched) == limit + 1
    assert_balanced(await ledger(service))


async def test_create_many_reserves_a_users_whole_share_when_it_fits(env):
    service, user, other, dispatcher, _ = env
    limit = service.policy.budget.limit // ESTIMATE
    await service.create_many([Submission(user, "Earlier errand")])
    # The rest of the window in one batch, interleaved with another user's: all admitted,
    # each job holding one estimate, the window full to the token.
    outcomes = await service.create_many(
        [Submission(user if n % 2 else other, f"Errand {n}") for n in range(2 * (limit - 1))]
    )
    assert all(isinstance(o, m.Job) for o in outcomes)
    async with service.store.read() as tx:
        held = [await tx.ledger.reserved_tokens(o.id) for o in outcomes if isinstance(o, m.Job)]
        now = service.now().timestamp()
        mine = await tx.ledger.window(user, service.policy.budget.window_start(now))
    assert held == [ESTIMATE] * len(outcomes)
    assert mine == (0, limit * ESTIMATE)
    refused = await service.create_many([Submission(user, "One too many")] * 2)
    assert [isinstance(o, m.Job) for o in refused] == [False, False]
    assert_balanced(await ledger(service))


async def test_states_and_existing_users_answer_for_the_known_ids_only(env):
    service, user, other, _, _ = env
    jobs = await service.create_many([Submission(user, f"Errand {n}") for n in range(3)])
    ids = [job.id for job in jobs if isinstance(job, m.Job)]
    await service.start(ids[1])
    async with service.store.read() as tx:
        states = await tx.jobs.states([*ids, "no-such-job"])
        users = await tx.users.existing([user, "no-such-user", other])
        none = await tx.jobs.states([])
    assert states == {
        ids[0]: m.JobState.QUEUED,
        ids[1]: m.JobState.RUNNING,
        ids[2]: m.JobState.QUEUED,
    }
    assert users == {user, other} and none == {}


class _CountingDriver:
    """The transaction's real driver, counting the window moves it is given (statements
    and rows of ``UPDATE token_windows SET reserved = reserved + …``)."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self.statements = 0
        self.rows = 0

    def __getattr__(self, name: str):
        return getattr(self._driver, name)

    async def execute(self, sql: str, *args):
        if sql.startswith("UPDATE token_windows SET reserved = reserved + $3, used"):
            self.statements += 1
            self.rows += 1
        return await self._driver.execute(sql, *args)

    async def executemany(self, sql: str, rows):
        if sql.startswith("UPDATE token_windows SET reserved = reserved + $3, used"):
            self.statements += 1
            self.rows += len(rows)
        return await self._driver.executemany(sql, rows)


async def test_settlements_in_one_transaction_move_each_window_once(env):
    service, user, other, _, _ = env
    jobs = await service.create_many(
        [Submission(user, f"Errand {n}") for n in range(3)] + [Submission(other, "Walk the dog")]
    )
    assert all(isinstance(job, m.Job) for job in jobs)
    async with service.store.write() as tx:
        counting = _CountingDriver(tx.ledger._sql)
        tx.ledger._sql = counting
        for n, job in enumerate(jobs):
            assert await tx.ledger.settle(job.id, 100 * (n + 1), NOW) == ESTIMATE
    # One statement for the two windows (alice's three jobs, bob's one), at the commit.
    assert (counting.statements, counting.rows) == (1, 2)
    async with service.store.read() as tx:
        assert await tx.ledger.window(user, WINDOW) == (600, 0)
        assert await tx.ledger.window(other, WINDOW) == (400, 0)
    assert_balanced(await ledger(service))


async def test_a_reservation_after_a_settlement_in_its_transaction_sees_the_room(env):
    service, user, _, _, _ = env
    limit = service.policy.budget.limit // ESTIMATE
    jobs = await service.create_many([Submission(user, f"Errand {n}") for n in range(limit)])
    assert all(isinstance(job, m.Job) for job in jobs)
    async with service.store.write() as tx:
        assert await tx.ledger.settle(jobs[0].id, 0, NOW) == ESTIMATE
        # The released estimate makes room for exactly one more.
        budget = service.policy.budget
        assert await tx.ledger.reserve(user, WINDOW, ESTIMATE, budget.limit)
        assert not await tx.ledger.reserve(user, WINDOW, ESTIMATE, budget.limit)
        assert await tx.ledger.window(user, WINDOW) == (0, limit * ESTIMATE)


async def test_a_rolled_back_settlement_moves_no_window(env):
    service, user, _, _, _ = env
    (job,) = await service.create_many([Submission(user, "Errand")])
    assert isinstance(job, m.Job)
    with pytest.raises(RuntimeError):
        async with service.store.write() as tx:
            assert await tx.ledger.settle(job.id, 50, NOW) == ESTIMATE
            raise RuntimeError("abandoned")
    async with service.store.read() as tx:
        assert await tx.ledger.window(user, WINDOW) == (0, ESTIMATE)
    assert_balanced(await ledger(service))


class _RowCounter:
    """The transaction's real driver, counting the statements and rows that insert
    subtasks and recorded LLM calls."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self.seen: dict[str, list[int]] = {"subtasks": [], "llm_call_usage": []}

    def __getattr__(self, name: str):
        return getattr(self._driver, name)

    def _count(self, sql: str, rows: int) -> None:
        for table, counts in self.seen.items():
            if sql.startswith(f"INSERT INTO {table} "):
                counts.append(rows)

    async def execute(self, sql: str, *args):
        self._count(sql, 1)
        return await self._driver.execute(sql, *args)

    async def executemany(self, sql: str, rows):
        self._count(sql, len(rows))
        return await self._driver.executemany(sql, rows)


async def test_a_batch_of_completions_writes_its_subtasks_and_calls_once(env):
    service, user, _, _, _ = env
    jobs = await service.create_many([Submission(user, f"Errand {n}") for n in range(3)])
    assert all(isinstance(job, m.Job) for job in jobs)
    calls = [m.CallUsage("core", 400, 100), m.CallUsage("subtasks", 300, 50)]
    counter: _RowCounter | None = None
    real_write = service.store.write

    def counted_write():
        # Every write transaction's driver is watched; the completions' is the last.
        nonlocal counter
        manager = real_write()

        class Watched:
            async def __aenter__(self):
                nonlocal counter
                tx = await manager.__aenter__()
                counter = _RowCounter(tx.driver)
                tx.tasks._sql = tx.ledger._sql = counter
                return tx

            async def __aexit__(self, *exc):
                return await manager.__aexit__(*exc)

        return Watched()

    service.store.write = counted_write  # type: ignore[method-assign]
    try:
        results = await service.complete_many(
            [CompleteItem(job.id, DRAFT, 850, calls) for job in jobs if isinstance(job, m.Job)]
        )
    finally:
        del service.store.write
    assert all(not isinstance(r, Exception) and r[1] for r in results)
    # Nine subtasks and six calls, each kind in one statement written before the commit.
    assert counter is not None
    assert counter.seen == {"subtasks": [9], "llm_call_usage": [6]}
    async with service.store.read() as tx:
        for job in jobs:
            assert isinstance(job, m.Job)
            task = await tx.tasks.of_job(job.id)
            assert task is not None
            assert [s.title for s in task.subtasks] == DRAFT.subtasks
            assert [s.order for s in task.subtasks] == [1, 2, 3]
    assert await _mismatches(service) == []


async def test_subtasks_inserted_in_a_transaction_are_read_back_in_it(env):
    service, user, _, _, _ = env
    (job,) = await service.create_many([Submission(user, "Errand")])
    assert isinstance(job, m.Job)
    async with service.store.write() as tx:
        task = await tx.tasks.insert(job, DRAFT, NOW)
        # Held back until the commit, yet a read in the same transaction sees them.
        seen = await tx.tasks.of_job(job.id)
    assert seen is not None and seen.subtasks == task.subtasks


async def _mismatches(service) -> list[tuple[str, int, int]]:
    async with service.store.read() as tx:
        return await tx.ledger.job_mismatches()
