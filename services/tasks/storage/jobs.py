"""Jobs and their state changes (``ports.JobsTx``): their statements beside the methods.

On PostgreSQL every state change announces itself with ``pg_notify`` at commit
(``job_feed.py`` listens), riding in the UPDATE's RETURNING where it can."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.domain.ports import DuplicateKey
from services.tasks.storage import tables as t
from services.tasks.storage import webhooks
from services.tasks.storage.driver import Driver, id_list, in_id_list, json_in, json_out, opt_dt
from services.tasks.storage.ids import new_ids
from services.tasks.storage.tasks import Tasks

JOBS = t.Job.__table__

#: The PostgreSQL NOTIFY channel of job state changes; the payload is the job id.
NOTIFY_CHANNEL = "taskmesh_jobs"


class Jobs:
    """``ports.JobsTx`` on one SQLAlchemy connection inside its transaction; ``tasks``
    reads the task of a succeeded job."""

    def __init__(self, c: AsyncConnection, driver: Driver, tasks: Tasks) -> None:
        self.c = c
        self._sql = driver
        self._pg = driver.dialect == "postgresql"
        self._tasks = tasks

    async def insert(
        self,
        *,
        user_id: str,
        text: str,
        request_id: str | None,
        idempotency_key: str | None,
        now: datetime,
        deadline: datetime,
    ) -> m.Job:
        (job,) = await self.insert_many(
            [m.NewJob(user_id, text, request_id, idempotency_key)], now=now, deadline=deadline
        )
        return job

    async def insert_many(
        self, jobs: list[m.NewJob], *, now: datetime, deadline: datetime
    ) -> list[m.Job]:
        """One ``executemany`` (asyncpg pipelines it: one round trip)."""
        created = [
            m.Job(
                id=job_id,
                user_id=new.user_id,
                state=m.JobState.QUEUED,
                natural_language=new.text,
                request_id=new.request_id,
                attempts=0,
                version=1,
                created_at=now,
                updated_at=now,
            )
            for job_id, new in zip(new_ids(len(jobs)), jobs, strict=True)
        ]
        at, until = self._sql.ts(now), self._sql.ts(deadline)
        rows = [
            (
                job.id,
                job.user_id,
                job.state.value,
                job.natural_language,
                job.request_id,
                new.idempotency_key,
                at,
                until,
            )
            for job, new in zip(created, jobs, strict=True)
        ]
        try:
            if len(rows) == 1:
                await self._sql.execute(_INSERT_JOB, *rows[0])
            else:
                await self._sql.executemany(_INSERT_JOB, rows)
        except (sqlite3.IntegrityError, asyncpg.UniqueViolationError) as exc:
            # PostgreSQL has aborted the transaction: the caller leaves it (rollback).
            keys = [new.idempotency_key for new in jobs if new.idempotency_key]
            raise DuplicateKey(", ".join(keys) or created[0].id) from exc
        return created

    async def states(self, job_ids: list[str]) -> dict[str, m.JobState]:
        if not job_ids:
            return {}
        # A worker's CheckJobs (its whole prefetch): straight to the driver, the ids as
        # one parameter, so the statement's text is the same for any number of them.
        rows = await self._sql.fetchall(
            _STATES + in_id_list(self._sql.dialect, "id"), id_list(self._sql, job_ids)
        )
        return {row[0]: m.JobState(row[1]) for row in rows}

    async def mark_dispatched(self, job_id: str, now: datetime) -> None:
        await self._sql.execute(_MARK_DISPATCHED, job_id, self._sql.ts(now))

    async def mark_dispatched_many(self, job_ids: list[str], now: datetime) -> None:
        if len(job_ids) == 1:
            await self.mark_dispatched(job_ids[0], now)
        elif job_ids:
            at = self._sql.ts(now)
            await self._sql.executemany(_MARK_DISPATCHED, [(job_id, at) for job_id in job_ids])

    async def requeue(self, job_id: str, now: datetime, deadline: datetime) -> None:
        await self.c.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.state == m.JobState.FAILED.value)
            .values(
                state=m.JobState.QUEUED.value,
                error_type=None,
                error_message=None,
                error_suggestions=None,
                version=JOBS.c.version + 1,
                updated_at=now,
                deadline_at=deadline,
            )
        )
        await self._notify(job_id)

    async def _notify(self, job_id: str) -> None:
        """Announces a state change to every replica at commit (PostgreSQL NOTIFY);
        nothing on SQLite, where watchers poll."""
        if self._pg:
            await self.c.execute(select(_NOTIFY_JOB), {"b_job": job_id})

    async def release_idempotency_key(self, job_id: str) -> None:
        await self.c.execute(update(JOBS).where(JOBS.c.id == job_id).values(idempotency_key=None))

    async def get(
        self, job_id: str, *, user_id: str | None = None, for_update: bool = False
    ) -> m.Job | None:
        row = await self._sql.fetchone(
            _JOB_BY_ID_FOR_UPDATE if for_update and self._pg else _JOB_BY_ID, job_id
        )
        if row is None or (user_id is not None and row[1] != user_id):
            return None
        if user_id is not None and (not m.JobState(row[2]).visible or row[7] == _REFUSED):
            return None  # a withdrawn or refused job was never accepted: its user cannot see it
        task = None
        if row[2] == m.JobState.SUCCEEDED.value:
            task = await self._tasks.of_job(row[0])
        return self._job(row, task)

    async def by_idempotency_key(self, user_id: str, key: str) -> m.Job | None:
        job_id = await self.c.scalar(
            select(JOBS.c.id).where(JOBS.c.user_id == user_id, JOBS.c.idempotency_key == key)
        )
        return await self.get(job_id) if job_id else None

    async def mark_running(self, job_id: str, now: datetime) -> m.Job | None:
        query = _MARK_RUNNING_PG if self._pg else _MARK_RUNNING
        row = await self._sql.fetchone(query, job_id, self._sql.ts(now))
        return self._job(row, None) if row is not None else None

    async def finish(
        self,
        job_id: str,
        state: m.JobState,
        error: m.JobError | None,
        now: datetime,
        *,
        from_states: tuple[str, ...] = m.OPEN_STATES,
    ) -> m.Job | None:
        row = await self._sql.fetchone(
            _finish(from_states, self._pg),
            job_id,
            state.value,
            error.type.value if error else None,
            error.message if error else None,
            json_in(list(error.suggestions)) if error else None,
            self._sql.ts(now),
        )
        if row is None:
            return None
        # Client webhooks: the outbox rows commit or roll back with the transition. A
        # submission refused on the request path was answered 400 with no job to follow.
        # row[13]: whether the job's user has an endpoint at all (most have none), read
        # by the transition itself, so they cost no second statement.
        if row[13] and row[7] != m.ErrorType.INVALID_INPUT.value:
            await webhooks.record_job_event(self._sql, row[0], row[1], row[2], now)
        return self._job(row, None)

    def _job(self, row: Any, task: m.Task | None) -> m.Job:
        """A row of ``_COLUMNS`` as a Job."""
        error = None
        if row[7]:
            suggestions = json_out(row[9])
            error = m.JobError(m.ErrorType(row[7]), row[8] or "", list(suggestions or []))
        return m.Job(
            id=row[0],
            user_id=row[1],
            state=m.JobState(row[2]),
            natural_language=row[3],
            request_id=row[4],
            attempts=row[5],
            version=row[6],
            created_at=self._sql.dt(row[10]),
            updated_at=self._sql.dt(row[11]),
            dispatched_at=opt_dt(self._sql, row[12]),
            error=error,
            task=task,
        )

    async def lock_overdue(self, job_id: str, now: datetime) -> bool:
        """PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so sweepers on several replicas never
        wait for each other or for a CompleteJob holding the row (False: someone else
        is settling it now; a later sweep sees it again if it stays open). SQLite: the
        transaction already holds the database's write lock."""
        query = select(JOBS.c.id).where(
            JOBS.c.id == job_id, JOBS.c.state.in_(m.OPEN_STATES), JOBS.c.deadline_at < now
        )
        if self._pg:
            query = query.with_for_update(skip_locked=True)
        return (await self.c.scalar(query)) is not None

    async def undispatched_keyed(self, created_before: datetime, limit: int = 500) -> list[str]:
        rows = await self.c.execute(
            select(JOBS.c.id)
            .where(
                JOBS.c.state == m.JobState.QUEUED.value,
                JOBS.c.idempotency_key.is_not(None),
                JOBS.c.dispatched_at.is_(None),
                JOBS.c.created_at < created_before,
            )
            .limit(limit)
        )
        return [row.id for row in rows]

    async def overdue(self, now: datetime, limit: int = 500) -> list[str]:
        rows = await self.c.execute(
            select(JOBS.c.id)
            .where(JOBS.c.state.in_(m.OPEN_STATES), JOBS.c.deadline_at < now)
            .limit(limit)
        )
        return [row.id for row in rows]

    async def page(self, query: m.JobQuery) -> tuple[list[m.Job], int]:
        where: list[str] = []
        args: list[Any] = []
        if query.user_id is not None:
            # A withdrawn job was answered 503 and a refused one 400: neither existed for its
            # user (SPEC §5, §8); the row stays for the Idempotency-Key replay and the ledger.
            args.append(query.user_id)
            where.append(
                f"user_id = ${len(args)} AND state != 'withdrawn'"
                f" AND coalesce(error_type, '') != '{_REFUSED}'"
            )
        if query.state is not None:
            args.append(query.state.value)
            where.append(f"state = ${len(args)}")
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        count = await self._sql.fetchone(f"SELECT count(*) FROM jobs{condition}", *args)
        n = len(args)
        rows = await self._sql.fetchall(
            f"SELECT {_COLUMNS} FROM jobs{condition}"
            f" ORDER BY created_at DESC, id DESC LIMIT ${n + 1} OFFSET ${n + 2}",
            *args,
            query.take,
            query.skip,
        )
        tasks = await self._tasks.of_jobs(
            [row[0] for row in rows if row[2] == m.JobState.SUCCEEDED.value]
        )
        return [self._job(row, tasks.get(row[0])) for row in rows], int(count[0] if count else 0)


# The error of a submission the AI service refused on the request path (answered 400 with no
# job id): only that path records it (domain/jobs.py).
_REFUSED = m.ErrorType.INVALID_INPUT.value

# The statements every job runs, straight to the driver (driver.py); the columns are
# in the order Jobs._job reads them.
_COLUMNS = (
    "id, user_id, state, natural_language, request_id, attempts, version, error_type,"
    " error_message, error_suggestions, created_at, updated_at, dispatched_at"
)
_INSERT_JOB = (
    "INSERT INTO jobs (id, user_id, capability, state, natural_language, request_id,"
    " idempotency_key, attempts, version, created_at, updated_at, deadline_at)"
    " VALUES ($1, $2, 'parse_task', $3, $4, $5, $6, 0, 1, $7, $7, $8)"
)
_MARK_DISPATCHED = "UPDATE jobs SET dispatched_at = $2 WHERE id = $1"
_STATES = "SELECT id, state FROM jobs WHERE "
_JOB_BY_ID = f"SELECT {_COLUMNS} FROM jobs WHERE id = $1"
_JOB_BY_ID_FOR_UPDATE = _JOB_BY_ID + " FOR UPDATE"
_OPEN_LIST = ", ".join(f"'{state}'" for state in m.OPEN_STATES)
_MARK_RUNNING = (
    "UPDATE jobs SET state = 'running', attempts = attempts + 1, version = version + 1,"
    f" updated_at = $2 WHERE id = $1 AND state IN ({_OPEN_LIST}) RETURNING {_COLUMNS}"
)
# pg_notify rides in RETURNING: one NOTIFY per state change, delivered at commit,
# without another round trip (job_feed.py).
_ANNOUNCE = f", pg_notify('{NOTIFY_CHANNEL}', id)"
_MARK_RUNNING_PG = _MARK_RUNNING + _ANNOUNCE


@functools.cache
def _finish(from_states: tuple[str, ...], pg: bool) -> str:
    """The terminal UPDATE from ``from_states`` (JobState values, written into the SQL
    as literals: they come from lifecycle.sources, never from a request); it returns
    ``_COLUMNS`` and whether the job's user has a webhook endpoint (an indexed lookup)."""
    listed = ", ".join(f"'{m.JobState(state).value}'" for state in from_states)
    return (
        "UPDATE jobs SET state = $2, error_type = $3, error_message = $4,"
        " error_suggestions = $5, version = version + 1, updated_at = $6"
        f" WHERE id = $1 AND state IN ({listed}) RETURNING {_COLUMNS}, {_HAS_ENDPOINT}"
        + (_ANNOUNCE if pg else "")
    )


_HAS_ENDPOINT = (
    "EXISTS (SELECT 1 FROM webhook_endpoints WHERE webhook_endpoints.user_id = jobs.user_id)"
)


_NOTIFY_JOB = func.pg_notify(NOTIFY_CHANNEL, bindparam("b_job"))
