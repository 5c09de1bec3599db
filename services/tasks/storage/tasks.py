"""Tasks and subtasks (``ports.TasksTx``): their statements beside the methods."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.storage import tables as t
from services.tasks.storage.ids import new_id

TASKS = t.Task.__table__
SUBTASKS = t.Subtask.__table__

_ORDER_COLUMNS = {
    m.TaskOrder.CREATED_AT: TASKS.c.created_at,
    m.TaskOrder.DUE_AT: TASKS.c.due_at,
    m.TaskOrder.PRIORITY_SCORE: TASKS.c.priority_score,
}
_INSERT_TASK = insert(TASKS)
_INSERT_SUBTASKS = insert(SUBTASKS)


class Tasks:
    """``ports.TasksTx`` on one SQLAlchemy connection inside its transaction."""

    def __init__(self, c: AsyncConnection) -> None:
        self.c = c

    async def insert(self, job: m.Job, draft: m.TaskDraft, now: datetime) -> m.Task:
        task = m.Task(
            id=new_id(),
            job_id=job.id,
            user_id=job.user_id,
            title=draft.title,
            due_at=draft.due_at,
            category=draft.category,
            priority_level=draft.priority_level,
            priority_score=draft.priority_score,
            priority_reason=draft.priority_reason,
            subtasks=[
                m.Subtask(new_id(), title, order) for order, title in enumerate(draft.subtasks, 1)
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

    async def get(self, user_id: str, task_id: str) -> m.Task | None:
        return await self._one(TASKS.c.id == task_id, TASKS.c.user_id == user_id)

    async def of_job(self, job_id: str) -> m.Task | None:
        """The job's task, or None (storage's own use: jobs read with their task)."""
        return await self._one(TASKS.c.job_id == job_id)

    async def of_jobs(self, job_ids: list[str]) -> dict[str, m.Task]:
        """job id → its task, for the jobs that have one."""
        if not job_ids:
            return {}
        rows = (await self.c.execute(select(TASKS).where(TASKS.c.job_id.in_(job_ids)))).all()
        subtasks = await self._subtasks([row.id for row in rows])
        return {row.job_id: task_from_row(row, subtasks.get(row.id, [])) for row in rows}

    async def page(self, query: m.TaskQuery) -> tuple[list[m.Task], int]:
        where = [TASKS.c.user_id == query.user_id]
        if query.category:
            where.append(TASKS.c.category == query.category)
        if query.priority_level:
            where.append(TASKS.c.priority_level == query.priority_level)
        total = int(await self.c.scalar(select(func.count()).select_from(TASKS).where(*where)) or 0)
        column = _ORDER_COLUMNS[query.order_by]
        primary = column.desc() if query.descending else column.asc()
        # Tasks without a due date sort last either way; the id makes the order total.
        order = [primary.nulls_last(), TASKS.c.id.desc() if query.descending else TASKS.c.id.asc()]
        rows = (
            await self.c.execute(
                select(TASKS).where(*where).order_by(*order).offset(query.skip).limit(query.take)
            )
        ).all()
        subtasks = await self._subtasks([row.id for row in rows])
        return [task_from_row(row, subtasks.get(row.id, [])) for row in rows], total

    async def _one(self, *where: Any) -> m.Task | None:
        row = (await self.c.execute(select(TASKS).where(*where))).first()
        if row is None:
            return None
        subtasks = await self._subtasks([row.id])
        return task_from_row(row, subtasks.get(row.id, []))

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


def task_from_row(row: Any, subtasks: list[m.Subtask]) -> m.Task:
    """A ``tasks`` row (attribute access by column name) and its subtasks as a Task."""
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
