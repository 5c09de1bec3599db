"""The Tasks service's storage behind one small interface.

``Store.write()`` opens a transaction (the unit of consistency: CompleteJob
runs entirely inside one); ``Store.read()`` a read-only one. Ledger updates
are single conditional UPDATE statements, so concurrent reservations cannot
overshoot the limit on either database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, func, insert, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import ColumnElement

from services.tasks.domain import models as m
from services.tasks.storage import db, webhooks
from services.tasks.storage import tables as t

# Core tables: the hot paths skip the ORM's unit of work and bulk-DML machinery.
USERS = t.User.__table__
KEYS = t.ApiKey.__table__
JOBS = t.Job.__table__
RESERVATIONS = t.Reservation.__table__
WINDOWS = t.TokenWindow.__table__
TASKS = t.Task.__table__
SUBTASKS = t.Subtask.__table__
CHARGES = t.Charge.__table__
CALLS = t.LlmCallUsage.__table__

_ORDER_COLUMNS = {
    m.TaskOrder.CREATED_AT: TASKS.c.created_at,
    m.TaskOrder.DUE_AT: TASKS.c.due_at,
    m.TaskOrder.PRIORITY_SCORE: TASKS.c.priority_score,
}


#: The PostgreSQL NOTIFY channel of job state changes; the payload is the job id.
NOTIFY_CHANNEL = "taskmesh_jobs"


class DuplicateKey(Exception):
    """An insert hit a unique constraint (idempotency key, user name)."""


def _new_id() -> str:
    return str(uuid.uuid4())


class Tx:
    """Operations inside one transaction."""

    def __init__(self, connection: AsyncConnection, dialect: str) -> None:
        self.c = connection
        self._dialect = dialect

    # --- users and keys ---------------------------------------------------------------
    async def count_users(self) -> int:
        return int(await self.c.scalar(select(func.count()).select_from(USERS)) or 0)

    async def insert_user(self, name: str, now: datetime) -> m.User:
        user = m.User(_new_id(), name, now)
        try:
            await self.c.execute(insert(USERS).values(id=user.id, name=name, created_at=now))
        except IntegrityError as exc:
            raise DuplicateKey(name) from exc
        return user

    async def insert_api_key(self, user_id: str, key_hash: str, prefix: str, now: datetime) -> None:
        await self.c.execute(
            insert(KEYS).values(
                id=_new_id(), user_id=user_id, key_hash=key_hash, prefix=prefix, created_at=now
            )
        )

    async def user_for_key_hash(self, key_hash: str) -> m.User | None:
        row = (await self.c.execute(_USER_FOR_KEY, {"b_hash": key_hash})).first()
        return m.User(row.id, row.name, row.created_at) if row else None

    async def user_by_name(self, name: str) -> m.User | None:
        row = (await self.c.execute(select(USERS).where(USERS.c.name == name))).first()
        return m.User(row.id, row.name, row.created_at) if row else None

    async def list_keys(self) -> list[m.UserKey]:
        rows = await self.c.execute(
            select(USERS.c.id, USERS.c.name, KEYS.c.prefix, KEYS.c.created_at, KEYS.c.revoked_at)
            .join(KEYS, KEYS.c.user_id == USERS.c.id)
            .order_by(USERS.c.name, KEYS.c.created_at)
        )
        return [m.UserKey(*row) for row in rows]

    async def keys_with_prefix(self, prefix: str) -> list[str]:
        """Ids of live keys whose stored (shown) prefix starts with ``prefix``."""
        rows = await self.c.execute(
            select(KEYS.c.id).where(
                # substr, not LIKE: LIKE ignores case on SQLite.
                func.substr(KEYS.c.prefix, 1, len(prefix)) == prefix,
                KEYS.c.revoked_at.is_(None),
            )
        )
        return [row.id for row in rows]

    async def live_key_ids_for_hash(self, key_hash: str) -> list[str]:
        rows = await self.c.execute(
            select(KEYS.c.id).where(KEYS.c.key_hash == key_hash, KEYS.c.revoked_at.is_(None))
        )
        return [row.id for row in rows]

    async def revoke_key(self, key_id: str, now: datetime) -> None:
        await self.c.execute(update(KEYS).where(KEYS.c.id == key_id).values(revoked_at=now))

    # --- token ledger -----------------------------------------------------------------
    async def reserve(self, user_id: str, window_start: int, tokens: int, limit: int) -> bool:
        """Adds ``tokens`` to the window's reservations if they still fit: one
        conditional UPDATE, so concurrent reservations cannot overshoot."""
        fits = {"b_user": user_id, "b_window": window_start, "b_tokens": tokens, "b_limit": limit}
        if (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount == 1:
            return True
        # The window's first reservation: create the row (racing creators are
        # fine), then try again.
        ins = pg_insert if self._dialect == "postgresql" else sqlite_insert
        await self.c.execute(
            ins(WINDOWS)
            .values(user_id=user_id, window_start=window_start, used=0, reserved=0)
            .on_conflict_do_nothing()
        )
        return (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount == 1

    async def window(self, user_id: str, window_start: int) -> tuple[int, int]:
        row = (
            await self.c.execute(
                select(WINDOWS.c.used, WINDOWS.c.reserved).where(
                    WINDOWS.c.user_id == user_id, WINDOWS.c.window_start == window_start
                )
            )
        ).first()
        return (int(row.used), int(row.reserved)) if row else (0, 0)

    async def settle(self, job_id: str, actual: int | None, now: datetime) -> int | None:
        """Replaces the job's open reservation with ``actual`` tokens (None:
        release it in full) in the reservation's own window. Returns the
        reserved amount, or None when there was no open reservation."""
        res = (
            await self.c.execute(_SETTLE, {"b_job": job_id, "b_now": now, "b_actual": actual})
        ).first()
        if res is None:
            return None
        await self._shift(res.user_id, res.window_start, reserved=-res.tokens, used=actual or 0)
        return int(res.tokens)

    async def charge_late(self, job_id: str, actual: int) -> bool:
        """Charges a completion that arrived after its reservation was released."""
        res = (
            await self.c.execute(
                update(RESERVATIONS)
                .where(
                    RESERVATIONS.c.job_id == job_id,
                    RESERVATIONS.c.settled_at.is_not(None),
                    RESERVATIONS.c.actual_tokens.is_(None),
                )
                .values(actual_tokens=actual)
                .returning(RESERVATIONS.c.user_id, RESERVATIONS.c.window_start)
            )
        ).first()
        if res is None:
            return False
        await self._shift(res.user_id, res.window_start, reserved=0, used=actual)
        return True

    async def top_up(self, job_id: str, needed: int, limit: int) -> m.Admission:
        """Makes the job's open reservation cover ``needed`` tokens (SPEC §8): nothing to do
        when it already does; else the difference is added to the reservation's own window
        with one conditional UPDATE (``used + reserved + delta <= limit``), so concurrent
        top-ups cannot push a window past its limit. Refused (granted False, nothing
        changed) when the window has no room or the job has no open reservation."""
        query = select(
            RESERVATIONS.c.user_id, RESERVATIONS.c.window_start, RESERVATIONS.c.tokens
        ).where(RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None))
        if self._dialect == "postgresql":
            query = query.with_for_update()
        res = (await self.c.execute(query)).first()
        if res is None:
            return m.Admission(False, 0)
        held = int(res.tokens)
        delta = needed - held
        if delta <= 0:
            return m.Admission(True, held)
        fits = {
            "b_user": res.user_id,
            "b_window": res.window_start,
            "b_tokens": delta,
            "b_limit": limit,
        }
        if (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount != 1:
            return m.Admission(False, held)
        await self.c.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None))
            .values(tokens=needed)
        )
        return m.Admission(True, needed)

    async def reserved_tokens(self, job_id: str) -> int:
        """The job's open reservation, tokens (0 when none is open)."""
        held = await self.c.scalar(
            select(RESERVATIONS.c.tokens).where(
                RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None)
            )
        )
        return int(held or 0)

    async def record_calls(self, job_id: str, calls: list[m.CallUsage], now: datetime) -> None:
        """Records the LLM calls behind a charge just made: one multi-row INSERT."""
        if not calls:
            return
        await self.c.execute(
            _INSERT_CALLS,
            [
                {
                    "job_id": job_id,
                    "operation": call.operation[:40],
                    "input_tokens": call.input_tokens,
                    "output_tokens": call.output_tokens,
                    "estimated": call.estimated,
                    "recorded_at": now,
                }
                for call in calls
            ],
        )

    async def _shift(self, user_id: str, window_start: int, *, reserved: int, used: int) -> None:
        """Moves a window's counters; the window is the reservation's own, never "now"."""
        await self.c.execute(
            _SHIFT,
            {"b_user": user_id, "b_window": window_start, "b_reserved": reserved, "b_used": used},
        )

    # --- jobs -------------------------------------------------------------------------
    async def insert_job(
        self,
        *,
        user_id: str,
        text: str,
        request_id: str | None,
        idempotency_key: str | None,
        reservation: m.ReservationInfo,
        now: datetime,
        deadline: datetime,
    ) -> m.Job:
        job = m.Job(
            id=_new_id(),
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
        await self.c.execute(
            _INSERT_RESERVATION,
            {
                "job_id": job.id,
                "user_id": user_id,
                "window_start": reservation.window_start,
                "tokens": reservation.tokens,
            },
        )
        return job

    async def job_states(self, job_ids: list[str]) -> dict[str, m.JobState]:
        if not job_ids:
            return {}
        rows = await self.c.execute(select(JOBS.c.id, JOBS.c.state).where(JOBS.c.id.in_(job_ids)))
        return {row.id: m.JobState(row.state) for row in rows}

    async def mark_dispatched(self, job_id: str, now: datetime) -> None:
        """Records the broker's confirm of a keyed job: a repeat of its key replays it."""
        await self.c.execute(update(JOBS).where(JOBS.c.id == job_id).values(dispatched_at=now))

    async def reopen(
        self,
        job_id: str,
        window_start: int,
        tokens: int,
        limit: int,
        now: datetime,
        deadline: datetime,
    ) -> bool:
        """Puts a failed job back to queued with a fresh reservation of ``tokens`` in
        ``window_start``, if they fit under ``limit``; the finished run's charge moves to
        token_charges in its own window. False (nothing changed) when they do not fit."""
        old = (
            await self.c.execute(
                select(RESERVATIONS).where(
                    RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_not(None)
                )
            )
        ).first()
        if old is None or not await self.reserve(old.user_id, window_start, tokens, limit):
            return False
        runs = await self.c.scalar(
            select(func.count()).select_from(CHARGES).where(CHARGES.c.job_id == job_id)
        )
        await self.c.execute(
            insert(CHARGES).values(
                job_id=job_id,
                run=int(runs or 0) + 1,
                user_id=old.user_id,
                window_start=old.window_start,
                tokens=old.actual_tokens or 0,
                charged_at=old.settled_at,
            )
        )
        await self.c.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.job_id == job_id)
            .values(window_start=window_start, tokens=tokens, actual_tokens=None, settled_at=None)
        )
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
        await self.notify_changed(job_id)
        return True

    async def notify_changed(self, job_id: str) -> None:
        """Announces a job's state change to every Tasks replica at commit
        (PostgreSQL NOTIFY, job_feed.CHANNEL); nothing on SQLite, where
        watchers poll. The hot paths (mark_running, finish) announce in their
        UPDATE's RETURNING instead of calling this."""
        if self._dialect == "postgresql":
            await self.c.execute(select(_NOTIFY_JOB), {"b_job": job_id})

    async def release_idempotency_key(self, job_id: str) -> None:
        """Frees a withdrawn job's key: the client's retry runs fresh (SPEC §5)."""
        await self.c.execute(update(JOBS).where(JOBS.c.id == job_id).values(idempotency_key=None))

    async def get_job(
        self, job_id: str, *, user_id: str | None = None, for_update: bool = False
    ) -> m.Job | None:
        query = _JOB_BY_ID
        if for_update and self._dialect == "postgresql":
            query = query.with_for_update()
        row = (await self.c.execute(query, {"b_job": job_id})).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            return None
        if user_id is not None and not m.JobState(row.state).visible:
            return None  # a withdrawn job was never accepted: its user cannot see it
        task = None
        if row.state == m.JobState.SUCCEEDED.value:
            task = await self._task_where(TASKS.c.job_id == row.id)
        return _job(row, task)

    async def job_by_idempotency_key(self, user_id: str, key: str) -> m.Job | None:
        job_id = await self.c.scalar(
            select(JOBS.c.id).where(JOBS.c.user_id == user_id, JOBS.c.idempotency_key == key)
        )
        return await self.get_job(job_id) if job_id else None

    async def mark_running(self, job_id: str, now: datetime) -> m.Job | None:
        """Counts an attempt of an open job; None if the job is not open."""
        query = _MARK_RUNNING_PG if self._dialect == "postgresql" else _MARK_RUNNING
        row = (await self.c.execute(query, {"b_job": job_id, "b_now": now})).first()
        return _job(row, None) if row is not None else None

    async def finish(
        self,
        job_id: str,
        state: m.JobState,
        error: m.JobError | None,
        now: datetime,
        *,
        from_states: tuple[str, ...] = m.OPEN_STATES,
    ) -> m.Job | None:
        """Moves a job in one of ``from_states`` to ``state``; None if it was in
        none of them (nothing changed). Use lifecycle.enter_terminal, not this.
        Also writes the job's webhook events (outbox) in the same transaction."""
        params = {
            "b_job": job_id,
            "b_from": list(from_states),
            "b_state": state.value,
            "b_error_type": error.type.value if error else None,
            "b_error_message": error.message if error else None,
            "b_error_suggestions": list(error.suggestions) if error else None,
            "b_now": now,
        }
        query = _FINISH_PG if self._dialect == "postgresql" else _FINISH
        row = (await self.c.execute(query, params)).first()
        if row is None:
            return None
        # Client webhooks: the outbox rows commit or roll back with the transition. A
        # submission refused on the request path was answered 400 with no job to follow.
        if row.error_type != m.ErrorType.INVALID_INPUT.value:
            await webhooks.record_job_event(self.c, row.id, row.user_id, row.state, now)
        return _job(row, None)

    async def lock_overdue(self, job_id: str, now: datetime) -> bool:
        """Whether the job is still open and past its deadline, locking its row if so.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so sweepers on several replicas never
        wait for each other or for a CompleteJob holding the row (False: someone else
        is settling it now; a later sweep sees it again if it stays open). SQLite: the
        transaction already holds the database's write lock."""
        query = select(JOBS.c.id).where(
            JOBS.c.id == job_id, JOBS.c.state.in_(m.OPEN_STATES), JOBS.c.deadline_at < now
        )
        if self._dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return (await self.c.scalar(query)) is not None

    async def undispatched_keyed_jobs(
        self, created_before: datetime, limit: int = 500
    ) -> list[str]:
        """Keyed jobs still queued whose dispatch was never recorded, created before
        ``created_before``: their accepting process died mid-request."""
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

    async def overdue_jobs(self, now: datetime, limit: int = 500) -> list[str]:
        rows = await self.c.execute(
            select(JOBS.c.id)
            .where(JOBS.c.state.in_(m.OPEN_STATES), JOBS.c.deadline_at < now)
            .limit(limit)
        )
        return [row.id for row in rows]

    async def list_jobs(self, q: m.JobQuery) -> tuple[list[m.Job], int]:
        """A page of jobs, newest first (id breaks ties), with the task of each
        succeeded one, and the number of jobs the filter matches."""
        where = []
        if q.user_id is not None:
            # A withdrawn job was answered 503: it never existed for its user (SPEC §8).
            where.append(JOBS.c.user_id == q.user_id)
            where.append(JOBS.c.state != m.JobState.WITHDRAWN.value)
        if q.state is not None:
            where.append(JOBS.c.state == q.state.value)
        total = int(await self.c.scalar(select(func.count()).select_from(JOBS).where(*where)) or 0)
        rows = (
            await self.c.execute(
                select(*_JOB_COLUMNS)
                .where(*where)
                .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
                .offset(q.skip)
                .limit(q.take)
            )
        ).all()
        succeeded = [row.id for row in rows if row.state == m.JobState.SUCCEEDED.value]
        tasks: dict[str, m.Task] = {}
        if succeeded:
            task_rows = (
                await self.c.execute(select(TASKS).where(TASKS.c.job_id.in_(succeeded)))
            ).all()
            subtasks = await self._subtasks([row.id for row in task_rows])
            tasks = {row.job_id: _task(row, subtasks.get(row.id, [])) for row in task_rows}
        return [_job(row, tasks.get(row.id)) for row in rows], total

    # --- tasks ------------------------------------------------------------------------
    async def insert_task(self, job: m.Job, draft: m.TaskDraft, now: datetime) -> m.Task:
        task = m.Task(
            id=_new_id(),
            job_id=job.id,
            user_id=job.user_id,
            title=draft.title,
            due_at=draft.due_at,
            category=draft.category,
            priority_level=draft.priority_level,
            priority_score=draft.priority_score,
            priority_reason=draft.priority_reason,
            subtasks=[
                m.Subtask(_new_id(), title, order) for order, title in enumerate(draft.subtasks, 1)
            ],
            created_at=now,
            updated_at=now,
        )
        row = {name: value for name, value in vars(task).items() if name != "subtasks"}
        await self.c.execute(_INSERT_TASK, row)
        if task.subtasks:
            await self.c.execute(
                _INSERT_SUBTASKS,
                [
                    {"id": s.id, "task_id": task.id, "title": s.title, "position": s.order}
                    for s in task.subtasks
                ],
            )
        return task

    async def get_task(self, user_id: str, task_id: str) -> m.Task | None:
        return await self._task_where(TASKS.c.id == task_id, TASKS.c.user_id == user_id)

    async def list_tasks(self, q: m.TaskQuery) -> tuple[list[m.Task], int]:
        where = [TASKS.c.user_id == q.user_id]
        if q.category:
            where.append(TASKS.c.category == q.category)
        if q.priority_level:
            where.append(TASKS.c.priority_level == q.priority_level)
        total = int(await self.c.scalar(select(func.count()).select_from(TASKS).where(*where)) or 0)
        column = _ORDER_COLUMNS[q.order_by]
        primary = column.desc() if q.descending else column.asc()
        # Tasks without a due date sort last either way; the id makes the order total.
        order = [primary.nulls_last(), TASKS.c.id.desc() if q.descending else TASKS.c.id.asc()]
        rows = (
            await self.c.execute(
                select(TASKS).where(*where).order_by(*order).offset(q.skip).limit(q.take)
            )
        ).all()
        subtasks = await self._subtasks([row.id for row in rows])
        return [_task(row, subtasks.get(row.id, [])) for row in rows], total

    async def _task_where(self, *where: ColumnElement[bool]) -> m.Task | None:
        row = (await self.c.execute(select(TASKS).where(*where))).first()
        if row is None:
            return None
        subtasks = await self._subtasks([row.id])
        return _task(row, subtasks.get(row.id, []))

    async def _subtasks(self, task_ids: list[str]) -> dict[str, list[m.Subtask]]:
        if not task_ids:
            return {}
        rows = await self.c.execute(
            select(SUBTASKS).where(SUBTASKS.c.task_id.in_(task_ids)).order_by(SUBTASKS.c.position)
        )
        out: dict[str, list[m.Subtask]] = {}
        for row in rows:
            out.setdefault(row.task_id, []).append(m.Subtask(row.id, row.title, row.position))
        return out

    # --- ledger check -----------------------------------------------------------------
    async def ledger_rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per user and window: (user, window, used, reserved, Σ charged, Σ open);
        charged counts the current runs' reservations and earlier runs' charges."""
        entries = union_all(
            select(
                RESERVATIONS.c.user_id.label("user_id"),
                RESERVATIONS.c.window_start.label("window_start"),
                func.coalesce(RESERVATIONS.c.actual_tokens, 0).label("charged"),
                case((RESERVATIONS.c.settled_at.is_(None), RESERVATIONS.c.tokens), else_=0).label(
                    "open"
                ),
            ),
            select(
                CHARGES.c.user_id,
                CHARGES.c.window_start,
                CHARGES.c.tokens,
                literal(0, BigInteger),
            ),
        ).subquery()
        charged = (
            select(
                entries.c.user_id,
                entries.c.window_start,
                func.coalesce(func.sum(entries.c.charged), 0).label("charged"),
                func.coalesce(func.sum(entries.c.open), 0).label("open"),
            )
            .group_by(entries.c.user_id, entries.c.window_start)
            .subquery()
        )
        rows = await self.c.execute(
            select(
                WINDOWS.c.user_id,
                WINDOWS.c.window_start,
                WINDOWS.c.used,
                WINDOWS.c.reserved,
                func.coalesce(charged.c.charged, 0),
                func.coalesce(charged.c.open, 0),
            ).outerjoin(
                charged,
                (charged.c.user_id == WINDOWS.c.user_id)
                & (charged.c.window_start == WINDOWS.c.window_start),
            )
        )
        # A generator makes a tuple of unknown length; the row has the six columns selected.
        return [tuple(int(v) if i else v for i, v in enumerate(row)) for row in rows]  # type: ignore[misc]  # six columns, see select

    async def ledger_job_mismatches(self) -> list[tuple[str, int, int]]:
        """Jobs whose charges differ from the sum of their recorded LLM calls:
        (job, Σ charged, Σ recorded calls), tokens. Charged = the settled reservation's
        actual tokens + earlier runs' charges (token_charges)."""
        entries = union_all(
            select(
                RESERVATIONS.c.job_id.label("job_id"),
                func.coalesce(RESERVATIONS.c.actual_tokens, 0).label("charged"),
                literal(0, BigInteger).label("recorded"),
            ),
            select(CHARGES.c.job_id, CHARGES.c.tokens, literal(0, BigInteger)),
            select(
                CALLS.c.job_id,
                literal(0, BigInteger),
                CALLS.c.input_tokens + CALLS.c.output_tokens,
            ),
        ).subquery()
        charged = func.coalesce(func.sum(entries.c.charged), 0)
        recorded = func.coalesce(func.sum(entries.c.recorded), 0)
        rows = await self.c.execute(
            select(entries.c.job_id, charged, recorded)
            .group_by(entries.c.job_id)
            .having(charged != recorded)
            .order_by(entries.c.job_id)
        )
        return [(row[0], int(row[1]), int(row[2])) for row in rows]


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
_USER_FOR_KEY = (
    select(USERS)
    .join(KEYS, KEYS.c.user_id == USERS.c.id)
    .where(KEYS.c.key_hash == bindparam("b_hash"), KEYS.c.revoked_at.is_(None))
)
_RESERVE_IF_FITS = (
    update(WINDOWS)
    .where(
        WINDOWS.c.user_id == bindparam("b_user"),
        WINDOWS.c.window_start == bindparam("b_window"),
        WINDOWS.c.used + WINDOWS.c.reserved + bindparam("b_tokens") <= bindparam("b_limit"),
    )
    .values(reserved=WINDOWS.c.reserved + bindparam("b_tokens"))
)
_INSERT_JOB = insert(JOBS)
_INSERT_RESERVATION = insert(RESERVATIONS)
_INSERT_TASK = insert(TASKS)
_INSERT_SUBTASKS = insert(SUBTASKS)
_INSERT_CALLS = insert(CALLS)
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
_SETTLE = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.job_id == bindparam("b_job"), RESERVATIONS.c.settled_at.is_(None))
    .values(settled_at=bindparam("b_now"), actual_tokens=bindparam("b_actual"))
    .returning(RESERVATIONS.c.user_id, RESERVATIONS.c.window_start, RESERVATIONS.c.tokens)
)
_SHIFT = (
    update(WINDOWS)
    .where(
        WINDOWS.c.user_id == bindparam("b_user"), WINDOWS.c.window_start == bindparam("b_window")
    )
    .values(
        reserved=WINDOWS.c.reserved + bindparam("b_reserved"),
        used=WINDOWS.c.used + bindparam("b_used"),
    )
)


def _job(row: Any, task: m.Task | None) -> m.Job:
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


def _task(row: Any, subtasks: list[m.Subtask]) -> m.Task:
    return m.Task(
        id=row.id,
        job_id=row.job_id,
        user_id=row.user_id,
        title=row.title,
        due_at=row.due_at,
        category=row.category,
        priority_level=row.priority_level,
        priority_score=row.priority_score,
        priority_reason=row.priority_reason,
        subtasks=subtasks,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Store:
    """Owns the engines. On SQLite, reads use their own connections without
    BEGIN IMMEDIATE, so they never wait for the write lock (WAL readers)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = db.create_engine(url)
        self._read_engine: AsyncEngine = (
            db.create_engine(url, read_only=True) if db.is_sqlite(url) else self.engine
        )
        self._dialect = self.engine.dialect.name

    async def open(self) -> None:
        await db.wait_for_database(self.engine)
        await db.migrate(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self.engine.begin() as connection:
            yield Tx(connection, self._dialect)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._read_engine.connect() as connection, connection.begin():
            yield Tx(connection, self._dialect)
