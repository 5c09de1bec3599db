"""A job's states and the transitions allowed between them: the one place
that says what may happen to a job (SPEC §5, §7, §8).

    queued ──StartJob──▶ running ──CompleteJob──▶ succeeded | failed
      │  ╲                  │ ▲ (redelivery: another attempt)
      │   ╲─cancel─▶ cancelled ◀─cancel─┘
      └─dispatch not confirmed in time─▶ withdrawn
    failed (RETRIES_EXHAUSTED | INTERNAL) ──dead-letter replay──▶ queued

- ``withdrawn``: the client was told 503; the job never runs, is never charged and
  is invisible to its user (404, not listed). Only a queued job can be withdrawn:
  once a worker started it, it was accepted after all.
- A job failed RETRIES_EXHAUSTED or INTERNAL can be reopened by a dead-letter
  replay (JobService.reopen): the only way out of a terminal state, so a job can
  reach a terminal state more than once.
- Every move into a terminal state goes through :func:`enter_terminal`, which
  settles the job's reservation in the same transaction and runs the
  terminal-state hooks (an outbox write, for instance) there too.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.tasks.domain import models as m
    from services.tasks.domain.ports import Tx


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WITHDRAWN = "withdrawn"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)

    @property
    def visible(self) -> bool:
        """Whether the job's user can see it (a withdrawn job was never accepted)."""
        return self is not JobState.WITHDRAWN


OPEN_STATES = (JobState.QUEUED.value, JobState.RUNNING.value)

#: state → the states it may move to.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {
            JobState.RUNNING,
            JobState.WITHDRAWN,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.CANCELLED,
        }
    ),
    JobState.RUNNING: frozenset(
        {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.WITHDRAWN: frozenset(),
    JobState.SUCCEEDED: frozenset(),
    # Reopened by a dead-letter replay (RETRIES_EXHAUSTED or INTERNAL only).
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset(),
}


@functools.cache
def sources(target: JobState) -> tuple[str, ...]:
    """The states a job may be in to move to ``target`` (for conditional UPDATEs); worked
    out once per target (TRANSITIONS is fixed), as every terminal transition asks."""
    return tuple(s.value for s, targets in TRANSITIONS.items() if target in targets)


#: Called inside the transaction of a terminal transition with the job as it now is.
TerminalHook = Callable[["Tx", "m.Job"], Awaitable[None]]


async def enter_terminal(
    tx: Tx,
    job_id: str,
    state: JobState,
    error: m.JobError | None,
    actual_tokens: int | None,
    now: datetime,
    hooks: Sequence[TerminalHook] = (),
) -> tuple[m.Job | None, int | None]:
    """Moves a job into terminal ``state`` if the transition is allowed from its
    current state, and in the same transaction settles its reservation
    (``actual_tokens`` charged; None releases it in full, SPEC §9) and runs ``hooks``.

    Returns (the job after the move, tokens that were reserved), or (None, None) when
    the job was not in a state that allows the move (nothing changed)."""
    if not state.terminal:
        raise ValueError(f"{state} is not a terminal state")
    job = await tx.jobs.finish(job_id, state, error, now, from_states=sources(state))
    if job is None:
        return None, None
    reserved = await tx.ledger.settle(job_id, actual_tokens, now)
    for hook in hooks:
        await hook(tx, job)
    return job, reserved
