"""Reads of the Tasks domain: a user's jobs and tasks, their usage of the token
budget, the worker's batched state check, and the ledger check. Nothing here
writes; every read runs in a read transaction (``Store.read``), which on SQLite
never waits for the writer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.events import JobEvents
from services.tasks.domain.ports import Store
from taskmesh import errors


@dataclass(frozen=True)
class LedgerCheck:
    """What ``taskmesh ledger check`` compares (SPEC §8 "the token ledger balances").

    ``windows``: per user and window (user id, window start s, used, reserved, Σ charged
    by its jobs, Σ their open reservations), tokens; ``jobs``: the jobs whose charge
    differs from the sum of their recorded LLM calls (job id, charged, recorded)."""

    windows: list[tuple[str, int, int, int, int, int]]
    jobs: list[tuple[str, int, int]]

    @property
    def unbalanced_windows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Windows where used ≠ Σ charged or reserved ≠ Σ open, or a counter is negative."""
        return [
            row
            for row in self.windows
            if row[2] != row[4] or row[3] != row[5] or row[2] < 0 or row[3] < 0
        ]


class JobQueries:
    """Read-side of jobs and tasks. ``budget`` gives the current window for ``usage``;
    ``events`` wakes ``watch``; ``clock`` returns aware UTC datetimes."""

    def __init__(
        self,
        store: Store,
        budget: BudgetPolicy,
        events: JobEvents | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.budget = budget
        self.events = events or JobEvents()
        self.now = clock

    async def get(self, user_id: str, job_id: str) -> m.Job:
        """The user's job with its task when succeeded. Raises NotFound (another user's,
        withdrawn, or absent)."""
        async with self.store.read() as tx:
            job = await tx.jobs.get(job_id, user_id=user_id)
        if job is None:
            raise errors.NotFound("job not found")
        return job

    async def watch(
        self, user_id: str, job_id: str, poll_s: float | None = None
    ) -> AsyncIterator[m.Job]:
        """Yields the job now and after every state change, until terminal. Woken by
        ``self.events`` (this process and, with a database feed, every replica);
        re-reads at least every ``poll_s`` s (default: ``events.poll_s``). Raises
        NotFound as :meth:`get`."""
        last = -1
        while True:
            waiter = self.events.waiter(job_id)
            job = await self.get(user_id, job_id)
            if job.version != last:
                last = job.version
                yield job
            if job.state.terminal:
                return
            await self.events.wait(waiter, poll_s)

    async def list_jobs(self, query: m.JobQuery) -> tuple[list[m.Job], int]:
        """A page of jobs newest first, and how many match (SPEC §5, §6 ListJobs)."""
        async with self.store.read() as tx:
            return await tx.jobs.page(query)

    async def states(self, job_ids: list[str]) -> dict[str, m.JobState]:
        """The states of the given jobs (unknown ids left out): the worker's batched check."""
        async with self.store.read() as tx:
            return await tx.jobs.states(job_ids)

    async def get_task(self, user_id: str, task_id: str) -> m.Task:
        """The user's task. Raises NotFound."""
        async with self.store.read() as tx:
            task = await tx.tasks.get(user_id, task_id)
        if task is None:
            raise errors.NotFound("task not found")
        return task

    async def list_tasks(self, query: m.TaskQuery) -> tuple[list[m.Task], int]:
        """A page of the user's tasks in the query's order, and how many match."""
        async with self.store.read() as tx:
            return await tx.tasks.page(query)

    async def usage(self, user_id: str) -> m.Usage:
        """The user's token budget in the current window (SPEC §9)."""
        start = self.budget.window_start(self.now().timestamp())
        async with self.store.read() as tx:
            used, reserved = await tx.ledger.window(user_id, start)
        return m.Usage(start, self.budget.window_end(start), self.budget.limit, used, reserved)

    async def ledger_check(self) -> LedgerCheck:
        """Every window's counters beside what its jobs were charged, and every job whose
        charge differs from its recorded calls, read in one transaction."""
        async with self.store.read() as tx:
            return LedgerCheck(await tx.ledger.rows(), await tx.ledger.job_mismatches())
