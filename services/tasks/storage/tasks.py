"""Tasks and subtasks (``ports.TasksTx``): their statements beside the methods, SQL
straight to the driver (driver.py): a task is written by every succeeded job and
read with every succeeded job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.storage.driver import Driver, opt_dt
from services.tasks.storage.ids import new_ids


class Tasks:
    """``ports.TasksTx`` on one connection inside its transaction.

    Subtask rows are held back and written by :meth:`flush` (the store calls it before
    COMMIT; every read of subtasks here calls it first): a CompleteJobs batch writes its
    jobs' subtasks with one ``executemany`` instead of one per task, whose fixed cost was
    most of it at three rows each."""

    def __init__(self, c: AsyncConnection, driver: Driver) -> None:
        self.c = c
        self._sql = driver
        # (id, task id, title, position) of the subtasks inserted, not written yet.
        self._subtasks: list[tuple[str, str, str, int]] = []

    async def flush(self) -> None:
        """Writes the subtask rows held back (one ``executemany``)."""
        if self._subtasks:
            rows, self._subtasks = self._subtasks, []
            await self._sql.executemany(_INSERT_SUBTASK, rows)

    async def insert(self, job: m.Job, draft: m.TaskDraft, now: datetime) -> m.Task:
        """One INSERT for the task; its subtasks are written by :meth:`flush`."""
        # One draw of random bits for the task's id and its subtasks' (storage.ids).
        task_id, *subtask_ids = new_ids(1 + len(draft.subtasks))
        task = m.Task(
            id=task_id,
            job_id=job.id,
            user_id=job.user_id,
            title=draft.title,
            due_at=draft.due_at,
            category=draft.category,
            priority_level=draft.priority_level,
            priority_score=draft.priority_score,
            priority_reason=draft.priority_reason,
            subtasks=[
                m.Subtask(sid, title, order)
                for order, (sid, title) in enumerate(
                    zip(subtask_ids, draft.subtasks, strict=True), 1
                )
            ],
            created_at=now,
            updated_at=now,
        )
        at = self._sql.ts(now)
        await self._sql.execute(
            _INSERT_TASK,
            task.id,
            task.job_id,
            task.user_id,
            task.title,
            self._sql.ts(task.due_at),
            task.category,
            task.priority_level,
            task.priority_score,
            task.priority_reason,
            at,
        )
        self._subtasks.extend((s.id, task.id, s.title, s.order) for s in task.subtasks)
        return task

    async def get(self, user_id: str, task_id: str) -> m.Task | None:
        return await self._one(
            f"SELECT {_COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2", task_id, user_id
        )

    async def of_job(self, job_id: str) -> m.Task | None:
        """The job's task, or None (storage's own use: jobs read with their task)."""
        return await self._one(_TASK_OF_JOB, job_id)

    async def of_jobs(self, job_ids: list[str]) -> dict[str, m.Task]:
        """job id → its task, for the jobs that have one."""
        if not job_ids:
            return {}
        rows = await self._sql.fetchall(
            f"SELECT {_COLUMNS} FROM tasks WHERE job_id IN ({_params(len(job_ids))})", *job_ids
        )
        tasks = await self._with_subtasks(rows)
        return {task.job_id: task for task in tasks}

    async def page(self, query: m.TaskQuery) -> tuple[list[m.Task], int]:
        args: list[Any] = [query.user_id]
        where = "user_id = $1"
        if query.category:
            args.append(query.category)
            where += f" AND category = ${len(args)}"
        if query.priority_level:
            args.append(query.priority_level)
            where += f" AND priority_level = ${len(args)}"
        count = await self._sql.fetchone(f"SELECT count(*) FROM tasks WHERE {where}", *args)
        # TaskOrder's values are the columns' names (models.TaskOrder): a closed set, never
        # user text, so it may stand in the statement.
        column = m.TaskOrder(query.order_by).value
        direction = "DESC" if query.descending else "ASC"
        # Tasks without a due date sort last either way; the id makes the order total.
        n = len(args)
        rows = await self._sql.fetchall(
            f"SELECT {_COLUMNS} FROM tasks WHERE {where}"
            f" ORDER BY {column} IS NULL, {column} {direction}, id {direction}"
            f" LIMIT ${n + 1} OFFSET ${n + 2}",
            *args,
            query.take,
            query.skip,
        )
        return await self._with_subtasks(rows), int(count[0] if count else 0)

    async def _one(self, sql: str, *args: Any) -> m.Task | None:
        row = await self._sql.fetchone(sql, *args)
        if row is None:
            return None
        return (await self._with_subtasks([row]))[0]

    async def _with_subtasks(self, rows: list[Any]) -> list[m.Task]:
        """The tasks of ``rows`` (``_COLUMNS``), each with its subtasks in order."""
        if not rows:
            return []
        await self.flush()
        ids = [row[0] for row in rows]
        subtasks: dict[str, list[m.Subtask]] = {}
        for sid, task_id, title, position in await self._sql.fetchall(
            "SELECT id, task_id, title, position FROM subtasks"
            f" WHERE task_id IN ({_params(len(ids))}) ORDER BY position",
            *ids,
        ):
            subtasks.setdefault(task_id, []).append(m.Subtask(sid, title, position))
        dt = self._sql.dt
        return [
            m.Task(
                id=row[0],
                job_id=row[1],
                user_id=row[2],
                title=row[3],
                due_at=opt_dt(self._sql, row[4]),
                category=row[5],
                priority_level=row[6],
                priority_score=row[7],
                priority_reason=row[8],
                subtasks=subtasks.get(row[0], []),
                created_at=dt(row[9]),
                updated_at=dt(row[10]),
            )
            for row in rows
        ]


def _params(n: int) -> str:
    """``$1, $2, …, $n``: an IN list of ``n`` parameters."""
    return ", ".join(f"${i}" for i in range(1, n + 1))


_COLUMNS = (
    "id, job_id, user_id, title, due_at, category, priority_level, priority_score,"
    " priority_reason, created_at, updated_at"
)
_TASK_OF_JOB = f"SELECT {_COLUMNS} FROM tasks WHERE job_id = $1"
_INSERT_TASK = (
    f"INSERT INTO tasks ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
)
_INSERT_SUBTASK = "INSERT INTO subtasks (id, task_id, title, position) VALUES ($1, $2, $3, $4)"
