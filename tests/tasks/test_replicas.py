"""Several Tasks replicas on one PostgreSQL database: each is a Store and a
JobService of its own (own engine and connections), as separate processes are.

Watchers hear every replica's changes (LISTEN/NOTIFY); the sweeper, idempotency
keys, the dev user and migrations stay correct when replicas do them at once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import make_url

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.events import JobEvents
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.users import UserService
from services.tasks.main import build_limiter
from services.tasks.storage.job_feed import CHANNEL, JobFeed, asyncpg_dsn
from services.tasks.storage.jobs import Jobs
from services.tasks.storage.ratelimit import LocalTokenBucket, RedisTokenBucket
from services.tasks.storage.repository import Store
from taskmesh import errors
from taskmesh.settings import Settings
from tests.support.databases import reset_schema
from tests.support.machine import free_port
from tests.tasks.conftest import (
    DRAFT,
    ESTIMATE,
    Clock,
    FakeDispatcher,
    assert_balanced,
    ledger,
    reads,
)

pytestmark = pytest.mark.integration

#: Longer than any test here: a watcher woken in time was woken by the feed, not the poll.
NO_POLL_S = 600.0
WAKE_DEADLINE_S = 10.0


@pytest.fixture
async def pg(postgres_database: str) -> str:
    await reset_schema(postgres_database)
    return postgres_database


class Replica:
    """One Tasks replica's domain: its own Store, notifier and (optionally) feed."""

    def __init__(self, url: str, clock: Clock, *, feed: bool = True, **feed_opts) -> None:
        self.store = Store(url)
        self.events = JobEvents(fallback_poll_s=NO_POLL_S, safety_poll_s=NO_POLL_S)
        self.feed = JobFeed(url, self.events, **feed_opts) if feed else None
        policy = JobPolicy(BudgetPolicy(86_400, 1000 * ESTIMATE, ESTIMATE), 900)
        self.jobs = JobService(self.store, FakeDispatcher(), policy, self.events, clock=clock)

    async def __aenter__(self) -> Replica:
        await self.store.open()
        if self.feed is not None:
            await self.feed.start()
            await self.feed.wait_live(WAKE_DEADLINE_S)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.feed is not None:
            await self.feed.close()
        await self.store.close()


async def _replicas(stack: AsyncExitStack, url: str, n: int, clock: Clock, **kw) -> list[Replica]:
    return [await stack.enter_async_context(Replica(url, clock, **kw)) for _ in range(n)]


async def _watch_until_terminal(replica: Replica, user_id: str, job_id: str) -> list[m.JobState]:
    return [job.state async for job in reads(replica.jobs).watch(user_id, job_id)]


async def test_a_watcher_on_one_replica_hears_a_completion_applied_on_another(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, pg, 2, clock)
        user, _ = await UserService(a.store).create("alice")
        job = await a.jobs.create(user.id, "pay the bill")
        watcher = asyncio.create_task(_watch_until_terminal(a, user.id, job.id))
        await b.jobs.start(job.id)
        await b.jobs.complete(job.id, DRAFT, 1200)
        # The poll is 600 s: only B's NOTIFY can wake A's watcher in time.
        states = await asyncio.wait_for(watcher, WAKE_DEADLINE_S)
        assert states[-1] is m.JobState.SUCCEEDED


async def test_a_watcher_hears_a_change_made_while_the_feed_connection_was_cut(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        (a,) = await _replicas(stack, pg, 1, clock, retry_s=0.5, check_interval_s=0.5)
        (b,) = await _replicas(stack, pg, 1, clock, feed=False)
        user, _ = await UserService(a.store).create("alice")
        job = await a.jobs.create(user.id, "pay the bill")
        watcher = asyncio.create_task(_watch_until_terminal(a, user.id, job.id))
        admin = await asyncpg.connect(asyncpg_dsn(pg), timeout=5)
        try:
            # Cut A's LISTEN connection on the server side, as a failover or a proxy
            # restart would; B then completes the job while A may not be listening.
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", a.feed.backend_pid)
        finally:
            await admin.close()
        await b.jobs.start(job.id)
        await b.jobs.complete(job.id, DRAFT, 1200)
        states = await asyncio.wait_for(watcher, WAKE_DEADLINE_S)
        assert states[-1] is m.JobState.SUCCEEDED
        async with asyncio.timeout(WAKE_DEADLINE_S):
            while a.feed.connects < 2:
                await asyncio.sleep(0.05)


async def test_watchers_poll_when_there_is_no_feed():
    events = JobEvents(fallback_poll_s=0.05, safety_poll_s=NO_POLL_S)
    assert events.poll_s == 0.05
    waiter = events.waiter("job")
    async with asyncio.timeout(WAKE_DEADLINE_S):
        await events.wait(waiter)
    events.feed_live = True
    assert events.poll_s == NO_POLL_S


async def test_concurrent_sweepers_on_two_replicas_expire_each_overdue_job_once(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, pg, 2, clock, feed=False)
        user, _ = await UserService(a.store).create("alice")
        ids = [(await a.jobs.create(user.id, f"job {i}")).id for i in range(60)]
        for job_id in ids[::2]:
            await a.jobs.start(job_id)
        clock.now += timedelta(seconds=901)
        counts = await asyncio.gather(*(r.jobs.expire_overdue() for r in (a, b, a, b)))
        assert sum(counts) == len(ids)
        for job_id in ids:
            job = await reads(a.jobs).get(user.id, job_id)
            assert job.state is m.JobState.FAILED
            assert job.error is not None and job.error.type is m.ErrorType.TIMED_OUT
        rows = await ledger(a.jobs)
        assert_balanced(rows)
        assert [(used, reserved) for _, _, used, reserved, _, _ in rows] == [(0, 0)]


async def test_a_sweep_racing_completions_on_another_replica_settles_each_job_once(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, pg, 2, clock, feed=False)
        user, _ = await UserService(a.store).create("alice")
        ids = [(await a.jobs.create(user.id, f"job {i}")).id for i in range(40)]
        for job_id in ids:
            await b.jobs.start(job_id)
        clock.now += timedelta(seconds=901)
        sweep = asyncio.create_task(a.jobs.expire_overdue())
        finished = await asyncio.gather(*(b.jobs.complete(j, DRAFT, 1000) for j in ids))
        await sweep
        succeeded = 0
        for (job, _), job_id in zip(finished, ids, strict=True):
            now = await reads(a.jobs).get(user.id, job_id)
            assert now.state is job.state
            succeeded += now.state is m.JobState.SUCCEEDED
            assert (now.task is not None) == (now.state is m.JobState.SUCCEEDED)
        rows = await ledger(a.jobs)
        assert_balanced(rows)
        # A timed-out job is still charged what its run spent (SPEC §8).
        assert rows[0][2] == 1000 * len(ids) and rows[0][3] == 0


async def test_the_same_idempotency_key_on_two_replicas_at_once_creates_one_job(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        replicas = await _replicas(stack, pg, 2, clock, feed=False)
        user, _ = await UserService(replicas[0].store).create("alice")
        for attempt in range(10):
            key = f"key-{attempt}"
            outcomes = await asyncio.gather(
                *(r.jobs.create(user.id, "pay the bill", idempotency_key=key) for r in replicas),
                return_exceptions=True,
            )
            jobs = {o.id for o in outcomes if isinstance(o, m.Job)}
            assert len(jobs) == 1, outcomes
            # The loser either replays the winner's job or, while the winner's dispatch
            # is unconfirmed, is told to retry (409, SPEC §5): never a second job.
            assert all(isinstance(o, m.Job | errors.FailedPrecondition) for o in outcomes), outcomes
        dispatched = [j for r in replicas for j in r.jobs.dispatcher.dispatched]
        assert len(dispatched) == 10
        assert_balanced(await ledger(replicas[0].jobs))
        _, reserved = await _window(replicas[0], user.id, clock)
        assert reserved == 10 * ESTIMATE


async def _window(replica: Replica, user_id: str, clock: Clock) -> tuple[int, int]:
    start = replica.jobs.policy.budget.window_start(clock().timestamp())
    async with replica.store.read() as tx:
        return await tx.ledger.window(user_id, start)


async def test_replicas_starting_at_once_on_an_empty_database_migrate_once_and_make_one_dev_user(
    pg,
):
    stores = [Store(pg) for _ in range(4)]
    try:
        # Migrations at once: an advisory lock serialises them; all end at head.
        await asyncio.gather(*(s.open() for s in stores))
        created = await asyncio.gather(
            *(UserService(s).ensure_dev_user("tm_dev-key-for-replicas") for s in stores)
        )
        assert created.count(True) == 1
        async with stores[0].read() as tx:
            versions = (await tx.c.exec_driver_sql("SELECT version_num FROM alembic_version")).all()
            assert len(versions) == 1
            assert await tx.users.count() == 1
            keys = await tx.users.list_keys()
        assert [k.user_name for k in keys] == ["dev"]
        user = await UserService(stores[1]).authenticate("tm_dev-key-for-replicas")
        assert user.name == "dev"
    finally:
        for s in stores:
            await s.close()


def test_postgresql_without_redis_warns_that_the_rate_limit_is_per_replica(caplog):
    settings = Settings(
        _env_file=None, database_url="postgresql+asyncpg://db/taskmesh", redis_url=None
    )
    with caplog.at_level(logging.WARNING, logger="services.tasks.main"):
        limiter = build_limiter(settings)
    assert isinstance(limiter, LocalTokenBucket)
    assert any("REDIS_URL" in r.getMessage() for r in caplog.records)


def test_sqlite_without_redis_starts_quietly(caplog, tmp_path):
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db")
    with caplog.at_level(logging.WARNING, logger="services.tasks.main"):
        build_limiter(settings)
    assert not caplog.records


async def test_with_redis_the_rate_limit_holds_across_replicas(redis_url, caplog):
    settings = Settings(
        _env_file=None,
        database_url="postgresql+asyncpg://db/taskmesh",
        redis_url=redis_url,
        rate_limit_bucket_size=4,
        rate_limit_refill_per_s=0.001,
    )
    with caplog.at_level(logging.WARNING, logger="services.tasks.main"):
        replicas = [build_limiter(settings) for _ in range(3)]
    assert not caplog.records
    assert all(isinstance(r, RedisTokenBucket) for r in replicas)
    key = f"replicas-{uuid.uuid4().hex}"
    try:
        waits = [await replicas[i % 3].acquire(key) for i in range(12)]
    finally:
        for r in replicas:
            await r.close()
    assert waits[:4] == [0.0] * 4
    assert all(w > 0 for w in waits[4:])


async def test_a_job_reopened_on_another_replica_after_the_sweep_listed_it_is_not_expired(
    pg, monkeypatch
):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, pg, 2, clock, feed=False)
        user, _ = await UserService(a.store).create("alice")
        job = await a.jobs.create(user.id, "pay the bill")
        await a.jobs.start(job.id)
        clock.now += timedelta(seconds=901)
        listed = Jobs.overdue

        async def listed_then_replayed(self, now, limit=500):  # type: ignore[no-untyped-def]
            overdue = await listed(self, now, limit)
            # Between the sweep's read and its write, replica B fails the job and a
            # dead-letter replay reopens it with a fresh deadline.
            failure = m.JobError(m.ErrorType.RETRIES_EXHAUSTED, "gave up")
            await b.jobs.complete(job.id, failure, 300)
            await b.jobs.reopen(job.id)
            return overdue

        monkeypatch.setattr(Jobs, "overdue", listed_then_replayed)
        assert await a.jobs.expire_overdue() == 0
        reopened = await reads(a.jobs).get(user.id, job.id)
        assert reopened.state is m.JobState.QUEUED and reopened.error is None
        assert_balanced(await ledger(a.jobs))


async def test_every_state_change_is_announced_once_to_other_replicas(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        (a,) = await _replicas(stack, pg, 1, clock, feed=False)
        heard: list[str] = []
        listener = await asyncpg.connect(asyncpg_dsn(pg), timeout=5)
        stack.push_async_callback(listener.close)
        await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        user, _ = await UserService(a.store).create("alice")
        job = await a.jobs.create(user.id, "pay the bill")
        await a.jobs.start(job.id)
        await a.jobs.complete(job.id, m.JobError(m.ErrorType.RETRIES_EXHAUSTED, "gave up"), 10)
        await a.jobs.reopen(job.id)
        await a.jobs.cancel(user.id, job.id)
        # running, failed, queued again, cancelled: one NOTIFY each, nothing else.
        async with asyncio.timeout(WAKE_DEADLINE_S):
            while len(heard) < 4:
                await asyncio.sleep(0.02)
        await reads(a.jobs).get(user.id, job.id)  # a read announces nothing
        await listener.execute("SELECT 1")  # delivers anything still pending
        assert heard == [job.id] * 4


async def test_while_the_feed_cannot_connect_watchers_fall_back_to_polling(pg):
    clock = Clock(datetime.now(UTC))
    async with AsyncExitStack() as stack:
        a, b = await _replicas(stack, pg, 2, clock, feed=False)
        a.jobs.events = JobEvents(fallback_poll_s=0.2, safety_poll_s=NO_POLL_S)
        # A feed whose database never answers (a closed port): it keeps retrying.
        closed = make_url(pg).set(host="127.0.0.1", port=free_port())
        closed = closed.render_as_string(hide_password=False)
        feed = JobFeed(closed, a.jobs.events, timeout_s=1, retry_s=0.1)
        await feed.start()
        stack.push_async_callback(feed.close)
        user, _ = await UserService(a.store).create("alice")
        job = await a.jobs.create(user.id, "pay the bill")
        watcher = asyncio.create_task(_watch_until_terminal(a, user.id, job.id))
        await b.jobs.start(job.id)
        await b.jobs.complete(job.id, DRAFT, 1200)
        states = await asyncio.wait_for(watcher, WAKE_DEADLINE_S)
        assert states[-1] is m.JobState.SUCCEEDED
        assert feed.connects == 0 and not a.jobs.events.feed_live
