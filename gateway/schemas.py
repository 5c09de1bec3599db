"""The HTTP edge's JSON shapes (camelCase) and their conversion from the
Tasks service's protobuf messages.

Request models validate strictly: what they reject becomes a 400 naming the
field. Response models are only ever built from trusted protobuf data."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from taskmesh import job_states
from taskmesh.capabilities.task_vocabulary import DEFAULT_CATEGORIES, DEFAULT_LEVELS
from taskmesh.capabilities.text_limits import MAX_TEXT_CHARS, MIN_TEXT_CHARS
from taskmesh.tasks.v1 import tasks_pb2

# What the validator below accepts, as one JSON Schema pattern, so the OpenAPI
# document says exactly what the server enforces (schemathesis checks both ways):
# optional whitespace, MIN_TEXT_CHARS to MAX_TEXT_CHARS characters that begin and end with a
# non-space, optional whitespace. Control characters are not refused here: the AI service
# screens the text for injections first, so an attack disguised with backspaces or escapes gets
# the one answer for an attack, not a rule naming the trick (issue 13); it then refuses the rest.
# Python's \s is str.isspace(), which is what str.strip() trims.
_EDGE_SPACE = r"\s"
_VISIBLE = r"\S"
_ANY = r"[\s\S]"
TEXT_PATTERN = (
    rf"^{_EDGE_SPACE}*(?:{_VISIBLE}|{_VISIBLE}{_ANY}{{0,{MAX_TEXT_CHARS - 2}}}{_VISIBLE})"
    rf"{_EDGE_SPACE}*$"
)

#: The states a user sees (``taskmesh.job_states.VISIBLE_STATES``; a test holds them equal).
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Always UTC with a trailing "Z" and milliseconds, so clients can parse one format.
UtcTime = Annotated[
    datetime,
    PlainSerializer(_iso_z, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2025-01-15T12:00:00.000Z"}
    ),
]


def _absent(value: object) -> bool:
    return value is None


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


# --- requests ---------------------------------------------------------------------------


class CreateTaskBody(BaseModel):
    """Body of ``POST /api/v1/tasks``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    natural_language: str = Field(
        alias="naturalLanguage",
        description="The sentence to turn into a task: any script, "
        f"{MIN_TEXT_CHARS} to {MAX_TEXT_CHARS} characters once "
        "leading and trailing whitespace is trimmed; control characters other than "
        "line breaks (LF, CR) and tab are refused (400) after the injection screen.",
        examples=["Plan the team offsite next month with budget approval and venue booking"],
        json_schema_extra={"minLength": MIN_TEXT_CHARS, "pattern": TEXT_PATTERN},
    )

    @field_validator("natural_language")
    @classmethod
    def _text(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("must not be empty or only whitespace")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"must be at most {MAX_TEXT_CHARS} characters (got {len(text)})")
        for char in text:
            category = unicodedata.category(char)
            if category == "Cs":
                # A lone surrogate ("\ud800" in JSON) is no character at all: no hop can encode it.
                raise ValueError("must be valid Unicode text (it contains a lone surrogate)")
        return text


def one_of(values: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``: the values a parameter takes, worded as for a Literal's
    (``gateway.body``), so every "must be one of" reads the same."""
    quoted = [f"'{value}'" for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _member_of(values: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"must be one of {one_of(values)}")
        return value

    return check


#: A task's category and priority level hold the parse-task config's values (SPEC §10; every
#: job runs with the defaults), so a filter on any other value is a client's mistake: a 400
#: naming it, as for ``orderBy``, not a silently empty page. Compared exactly, as stored.
CATEGORIES = DEFAULT_CATEGORIES
PRIORITY_LEVELS = tuple(name for name, _, _ in DEFAULT_LEVELS)
Category = Annotated[
    str,
    AfterValidator(_member_of(CATEGORIES)),
    WithJsonSchema({"type": "string", "enum": list(CATEGORIES)}),
]
PriorityLevel = Annotated[
    str,
    AfterValidator(_member_of(PRIORITY_LEVELS)),
    WithJsonSchema({"type": "string", "enum": list(PRIORITY_LEVELS)}),
]

OrderBy = Literal["dueDate", "priorityScore", "createdAt"]
OrderDirection = Literal["asc", "desc"]


class ListTasksQuery(BaseModel):
    """Query string of ``GET /api/v1/tasks``; values arrive as text, hence lax ints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skip: int = Field(0, ge=0, le=2**31 - 1)
    take: int = Field(10, ge=1, le=100)
    order_by: OrderBy = Field("createdAt", alias="orderBy")
    order_direction: OrderDirection = Field("desc", alias="orderDirection")
    category: Category | None = None
    priority_level: PriorityLevel | None = Field(None, alias="priorityLevel")


class ListJobsQuery(BaseModel):
    """Query string of ``GET /api/v1/jobs`` (SPEC §5); paging as for tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: JobStatus | None = Field(None, description="Only jobs in this state.")
    skip: int = Field(0, ge=0, le=2**31 - 1)
    take: int = Field(10, ge=1, le=100)


# --- responses --------------------------------------------------------------------------


class Priority(_Model):
    level: str
    score: int
    reason: str


class Subtask(_Model):
    id: str
    title: str
    order: int


class Task(_Model):
    id: str
    title: str
    due_date: UtcTime | None = Field(description="UTC; null when the sentence states none.")
    category: str
    priority: Priority
    subtasks: list[Subtask] | None = Field(
        description="3-7 steps in order, or null for an atomic task and when the subtasks "
        "could not be produced (never an empty list; SPEC §10)"
    )
    created_at: UtcTime
    updated_at: UtcTime
    job_id: str


class JobError(_Model):
    type: str = Field(
        description="VAGUE_INPUT, INVALID_OUTPUT, RETRIES_EXHAUSTED, TIMED_OUT, INVALID_INPUT, "
        "BUDGET_EXHAUSTED, LLM_REJECTED or INTERNAL"
    )
    message: str
    suggestions: list[str] | None = Field(None, exclude_if=_absent)


class Job(_Model):
    job_id: str
    status: JobStatus
    created_at: UtcTime
    updated_at: UtcTime
    attempts: int
    task: Task | None = Field(None, exclude_if=_absent, description="Once succeeded.")
    error: JobError | None = Field(None, exclude_if=_absent, description="Once failed.")

    @property
    def terminal(self) -> bool:
        return self.status in job_states.TERMINAL


class JobLinks(_Model):
    self_link: str = Field(alias="self")


class JobAccepted(_Model):
    job_id: str
    status: JobStatus
    links: JobLinks


class Pagination(_Model):
    total_count: int
    skip: int
    take: int
    has_more: bool
    current_page: int = Field(description="1-based page that contains `skip`.")
    total_pages: int


class TaskList(_Model):
    tasks: list[Task]
    pagination: Pagination


class JobList(_Model):
    jobs: list[Job] = Field(description="Newest first.")
    pagination: Pagination


class Usage(_Model):
    window_start: UtcTime
    window_end: UtcTime
    limit: int
    used: int
    reserved: int
    remaining: int


class HealthStatus(_Model):
    status: Literal["ok"]


class FieldError(_Model):
    field: str
    message: str


class Problem(_Model):
    """RFC 9457 problem document; every error response is one."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    request_id: str
    errors: list[FieldError] | None = Field(None, exclude_if=_absent)
    suggestions: list[str] | None = Field(None, exclude_if=_absent)


# --- protobuf -> HTTP -------------------------------------------------------------------

_STATES: dict[int, JobStatus] = {
    value: name  # type: ignore[misc]  # VISIBLE_STATES's names are JobStatus's
    for name, value in job_states.VISIBLE_STATES.items()
}
_ERROR_PREFIX = "JOB_ERROR_TYPE_"


def _time(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def proto_state(status: JobStatus | None) -> job_states.State:
    """The wire state of an HTTP status; UNSPECIFIED (any) for None."""
    return tasks_pb2.JOB_STATE_UNSPECIFIED if status is None else job_states.VISIBLE_STATES[status]


def job_status(state: tasks_pb2.JobState) -> JobStatus:
    return _STATES.get(state, "queued")


def error_type(value: int) -> str:
    if value == tasks_pb2.JOB_ERROR_TYPE_UNSPECIFIED:
        return "INTERNAL"
    name = tasks_pb2.JobErrorType.Name(value)
    return name.removeprefix(_ERROR_PREFIX)


def task_from_proto(task: tasks_pb2.Task) -> Task:
    return Task(
        id=task.task_id,
        title=task.title,
        due_date=_time(task.due_time) if task.HasField("due_time") else None,
        category=task.category,
        priority=Priority(
            level=task.priority.level, score=task.priority.score, reason=task.priority.reason
        ),
        # The wire carries "none" as no steps: a real list has 3-7 (SPEC §10).
        subtasks=[
            Subtask(id=s.subtask_id, title=s.title, order=s.order)
            for s in sorted(task.subtasks, key=lambda s: s.order)
        ]
        or None,
        created_at=_time(task.create_time),
        updated_at=_time(task.update_time),
        job_id=task.job_id,
    )


def job_from_proto(job: tasks_pb2.Job) -> Job:
    error = None
    if job.HasField("error"):
        error = JobError(
            type=error_type(job.error.type),
            message=job.error.message,
            suggestions=list(job.error.suggestions) or None,
        )
    return Job(
        job_id=job.job_id,
        status=job_status(job.state),
        created_at=_time(job.create_time),
        updated_at=_time(job.update_time),
        attempts=job.attempts,
        task=task_from_proto(job.task) if job.HasField("task") else None,
        error=error,
    )


def job_location(job_id: str) -> str:
    return f"/api/v1/jobs/{job_id}"


def accepted(job: tasks_pb2.Job, status: JobStatus = "queued") -> JobAccepted:
    """The 202 body. ``status`` is what the job was accepted as: ``queued`` (SPEC §5),
    also on an Idempotency-Key replay, which repeats the first answer whatever the job
    became since; a ``Prefer: wait`` that ran out passes the last state it saw."""
    return JobAccepted(
        job_id=job.job_id,
        status=status,
        links=JobLinks.model_validate({"self": job_location(job.job_id)}),
    )


def pagination(total_count: int, skip: int, take: int) -> Pagination:
    return Pagination(
        total_count=total_count,
        skip=skip,
        take=take,
        has_more=skip + take < total_count,
        current_page=skip // take + 1,
        total_pages=math.ceil(total_count / take),
    )


def task_list_from_proto(response: tasks_pb2.ListTasksResponse, query: ListTasksQuery) -> TaskList:
    return TaskList(
        tasks=[task_from_proto(t) for t in response.tasks],
        pagination=pagination(response.total_count, query.skip, query.take),
    )


def job_list_from_proto(response: tasks_pb2.ListJobsResponse, query: ListJobsQuery) -> JobList:
    return JobList(
        jobs=[job_from_proto(j) for j in response.jobs],
        pagination=pagination(response.total_count, query.skip, query.take),
    )


def usage_from_proto(response: tasks_pb2.GetUsageResponse) -> Usage:
    return Usage(
        window_start=_time(response.window_start),
        window_end=_time(response.window_end),
        limit=response.limit,
        used=response.used,
        reserved=response.reserved,
        remaining=response.remaining,
    )


def dump(model: BaseModel) -> str:
    return model.model_dump_json(by_alias=True)
