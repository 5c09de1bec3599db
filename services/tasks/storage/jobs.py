"""Jobs and their state changes (``ports.JobsTx``): their statements beside the methods.

On PostgreSQL every state change announces itself with ``pg_notify`` at commit
(``job_feed.py`` listens), riding in the UPDATE's RETURNING where it can."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.domain.ports import DuplicateKey
from services.tasks.storage import tables as t
from services.tasks.storage import webhooks
from services.tasks.storage.ids import new_id
from services.tasks.storage.tasks import Tasks

JOBS = t.Job.__table__

#: The PostgreSQL NOTIFY channel of job state changes; the payload is the job id.
NOTIFY_CHANNEL = "taskmesh_jobs"


class Jobs:
    """``ports.JobsTx`` on one SQLAlchemy connection inside its transaction; ``tasks``
    reads the task of a succeeded job."""

    def __init__(self, c: AsyncConnection, dialect: str, tasks: Tasks) -> None:
        self.c = c
        self._pg = dialect == "postgresql"
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
        job = m.Job(
            id=new_id(),
            user_id=user_id,
            state=m.JobState.QUEUED,
            natural_language=text,
            request_id=request_id,
            attempts=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.c.execute(
                _INSERT_JOB,
                {
                    "id": job.id,
                    "user_id": user_id,
                    "capability": "parse_task",
                    "state": job.state.value,
                    "natural_language": text,
                    "request_id": request_id,
                    "idempotency_key": idempotency_key,
                    "attempts": 0,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "deadline_at": deadline,
                },
            )
        except IntegrityError as exc:
            raise DuplicateKey(idempotency_key or job.id) from exc
        return job

    async def states(self, job_ids: list[str]) -> dict[str, m.JobState]:
        if not job_ids:
            return {}
        rows = await self.c.execute(select(JOBS.c.id, JOBS.c.state).where(JOBS.c.id.in_(job_ids)))
        return {row.id: m.JobState(row.state) for row in rows}

    async def mark_dispatched(self, job_id: str, now: datetime) -> None:
        await self.c.execute(update(JOBS).where(JOBS.c.id == job_id).values(dispatched_at=now))

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
        query = _JOB_BY_ID
        if for_update and self._pg:
            query = query.with_for_update()
        row = (await self.c.execute(query, {"b_job": job_id})).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            return None
        if user_id is not None and not m.JobState(row.state).visible:
            return None  # a withdrawn job was never accepted: its user cannot see it
        task = None
        if row.state == m.JobState.SUCCEEDED.value:
            task = await self._tasks.of_job(row.id)
        return job_from_row(row, task)

    async def by_idempotency_key(self, user_id: str, key: str) -> m.Job | None:
        job_id = await self.c.scalar(
            select(JOBS.c.id).where(JOBS.c.user_id == user_id, JOBS.c.idempotency_key == key)
        )
        return await self.get(job_id) if job_id else None

    async def mark_running(self, job_id: str, now: datetime) -> m.Job | None:
        query = _MARK_RUNNING_PG if self._pg else _MARK_RUNNING
        row = (await self.c.execute(query, {"b_job": job_id, "b_now": now})).first()
        return job_from_row(row, None) if row is not None else None

    async def finish(
        self,
        job_id: str,
        state: m.JobState,
        error: m.JobError | None,
        now: datetime,
        *,
        from_states: tuple[str, ...] = m.OPEN_STATES,
    ) -> m.Job | None:
        params = {
            "b_job": job_id,
            "b_from": list(from_states),
            "b_state": state.value,
            "b_error_type": error.type.value if error else None,
            "b_error_message": error.message if error else None,
            "b_error_suggestions": list(error.suggestions) if error else None,
            "b_now": now,
        }
        query = _FINISH_PG if self._pg else _FINISH
        row = (await self.c.execute(query, params)).first()
        if row is None:
            return None
        # Client webhooks: the outbox rows commit or roll back with the transition. A
        # submission refused on the request path was answered 400 with no job to follow.
        if row.error_type != m.ErrorType.INVALID_INPUT.value:
            await webhooks.record_job_event(self.c, row.id, row.user_id, row.state, now)
        return job_from_row(row, None)

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
        where = []
        if query.user_id is not None:
            # A withdrawn job was answered 503: it never existed for its user (SPEC §8).
            where.append(JOBS.c.user_id == query.user_id)
            where.append(JOBS.c.state != m.JobState.WITHDRAWN.value)
        if query.state is not None:
            where.append(JOBS.c.state == query.state.value)
        total = int(await self.c.scalar(select(func.count()).select_from(JOBS).where(*where)) or 0)
        rows = (
            await self.c.execute(
                select(*_JOB_COLUMNS)
                .where(*where)
                .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
                .offset(query.skip)
                .limit(query.take)
            )
        ).all()
        tasks = await self._tasks.of_jobs(
            [row.id for row in rows if row.state == m.JobState.SUCCEEDED.value]
        )
        return [job_from_row(row, tasks.get(row.id)) for row in rows], total


def job_from_row(row: Any, task: m.Task | None) -> m.Job:
    """A ``jobs`` row (attribute access by column name, ``_JOB_COLUMNS``) as a Job."""
    error = None
    if row.error_type:
        error = m.JobError(
            m.ErrorType(row.error_type), row.error_message or "", list(row.error_suggestions or [])
        )
    return m.Job(
        id=row.id,
        user_id=row.user_id,
        state=m.JobState(row.state),
        natural_language=row.natural_language,
        request_id=row.request_id,
        attempts=row.attempts,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        dispatched_at=row.dispatched_at,
        error=error,
        task=task,
    )


_JOB_COLUMNS = (
    JOBS.c.id,
    JOBS.c.user_id,
    JOBS.c.state,
    JOBS.c.natural_language,
    JOBS.c.request_id,
    JOBS.c.attempts,
    JOBS.c.version,
    JOBS.c.error_type,
    JOBS.c.error_message,
    JOBS.c.error_suggestions,
    JOBS.c.created_at,
    JOBS.c.updated_at,
    JOBS.c.dispatched_at,
)

# Hot-path statements, built once: constructing and cache-keying a statement
# costs more CPU than SQLite takes to run it. Values travel as bind parameters.
_INSERT_JOB = sa_insert(JOBS)
_JOB_BY_ID = select(*_JOB_COLUMNS).where(JOBS.c.id == bindparam("b_job"))
_MARK_RUNNING = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_job"), JOBS.c.state.in_(m.OPEN_STATES))
    .values(
        state=m.JobState.RUNNING.value,
        attempts=JOBS.c.attempts + 1,
        version=JOBS.c.version + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(*_JOB_COLUMNS)
)
_FINISH = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_job"), JOBS.c.state.in_(bindparam("b_from", expanding=True)))
    .values(
        state=bindparam("b_state"),
        error_type=bindparam("b_error_type"),
        error_message=bindparam("b_error_message"),
        error_suggestions=bindparam("b_error_suggestions", type_=JOBS.c.error_suggestions.type),
        version=JOBS.c.version + 1,
        updated_at=bindparam("b_now"),
    )
    .returning(*_JOB_COLUMNS)
)
# pg_notify rides in RETURNING: one NOTIFY per state change, delivered at commit,
# without another round trip (job_feed.py).
_NOTIFY_JOB = func.pg_notify(NOTIFY_CHANNEL, bindparam("b_job"))
_MARK_RUNNING_PG = _MARK_RUNNING.returning(func.pg_notify(NOTIFY_CHANNEL, JOBS.c.id))
_FINISH_PG = _FINISH.returning(func.pg_notify(NOTIFY_CHANNEL, JOBS.c.id))
