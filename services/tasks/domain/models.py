"""The Tasks service's domain objects: plain data, no transport, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.tasks.domain.lifecycle import OPEN_STATES, JobState

__all__ = ["OPEN_STATES", "JobState"]


class ErrorType(StrEnum):
    VAGUE_INPUT = "VAGUE_INPUT"
    INVALID_OUTPUT = "INVALID_OUTPUT"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
    TIMED_OUT = "TIMED_OUT"
    INTERNAL = "INTERNAL"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    LLM_REJECTED = "LLM_REJECTED"
    INVALID_INPUT = "INVALID_INPUT"


@dataclass(frozen=True)
class JobError:
    type: ErrorType
    message: str
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Subtask:
    id: str
    title: str
    order: int


@dataclass(frozen=True)
class TaskDraft:
    """A capability's result, before it is stored."""

    title: str
    due_at: datetime | None
    category: str
    priority_level: str
    priority_score: int
    priority_reason: str
    subtasks: list[str]


@dataclass(frozen=True)
class Task:
    id: str
    job_id: str
    user_id: str
    title: str
    due_at: datetime | None
    category: str
    priority_level: str
    priority_score: int
    priority_reason: str
    subtasks: list[Subtask]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Job:
    id: str
    user_id: str
    state: JobState
    natural_language: str
    request_id: str | None
    attempts: int
    version: int
    created_at: datetime
    updated_at: datetime
    error: JobError | None = None
    task: Task | None = None
    #: When a keyed job's dispatch was confirmed; None while in flight (or unkeyed).
    dispatched_at: datetime | None = None

    def with_task(self, task: Task | None) -> Job:
        """This job with ``task`` (``dataclasses.replace(job, task=task)``, spelled out:
        every completion makes one, and ``replace`` walks the fields at a few times the
        CPU of the constructor)."""
        return Job(
            id=self.id,
            user_id=self.user_id,
            state=self.state,
            natural_language=self.natural_language,
            request_id=self.request_id,
            attempts=self.attempts,
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            error=self.error,
            task=task,
            dispatched_at=self.dispatched_at,
        )


@dataclass(frozen=True)
class NewJob:
    """A job to create (``JobsTx.insert_many``): its user, text, the request id it came
    with, and its Idempotency-Key (None: unkeyed)."""

    user_id: str
    text: str
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ReservationInfo:
    tokens: int
    window_start: int


@dataclass(frozen=True)
class CallUsage:
    """One LLM call of a job as the worker metered it (tokens)."""

    operation: str
    input_tokens: int
    output_tokens: int
    estimated: bool = False

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Admission:
    """A budget admission's answer (SPEC §8): whether the job's reservation covers what
    was asked, and the reservation after it (tokens; 0 when the job has none open)."""

    granted: bool
    reserved: int


@dataclass(frozen=True)
class Usage:
    window_start: int
    window_end: int
    limit: int
    used: int
    reserved: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.reserved)


@dataclass(frozen=True)
class User:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class UserKey:
    user_id: str
    user_name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class TaskOrder(StrEnum):
    """How a task list is sorted; each value is the name of the tasks column sorted on
    (storage reads it as such, so the order is named once)."""

    CREATED_AT = "created_at"
    DUE_AT = "due_at"
    PRIORITY_SCORE = "priority_score"


@dataclass(frozen=True)
class TaskQuery:
    user_id: str
    skip: int = 0
    take: int = 10
    order_by: TaskOrder = TaskOrder.CREATED_AT
    descending: bool = True
    category: str | None = None
    priority_level: str | None = None


@dataclass(frozen=True)
class JobQuery:
    """A page of jobs, newest first (SPEC §5 ``GET /api/v1/jobs``, §3 ``taskmesh jobs list``).

    ``user_id`` None means every user's jobs (operators only); ``state`` None any state."""

    user_id: str | None
    state: JobState | None = None
    skip: int = 0
    take: int = 10
