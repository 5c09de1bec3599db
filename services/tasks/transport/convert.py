"""Domain objects <-> protobuf messages of taskmesh.tasks.v1."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from services.tasks.domain import models as m
from services.tasks.domain import webhook_models as wm
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.tasks.v1 import tasks_pb2
from taskmesh.timestamps import to_timestamp

_STATES = {
    m.JobState.QUEUED: tasks_pb2.JOB_STATE_QUEUED,
    m.JobState.RUNNING: tasks_pb2.JOB_STATE_RUNNING,
    m.JobState.SUCCEEDED: tasks_pb2.JOB_STATE_SUCCEEDED,
    m.JobState.FAILED: tasks_pb2.JOB_STATE_FAILED,
    m.JobState.WITHDRAWN: tasks_pb2.JOB_STATE_WITHDRAWN,
    m.JobState.CANCELLED: tasks_pb2.JOB_STATE_CANCELLED,
}
_STATES_BACK = {v: k for k, v in _STATES.items()}
# EnumTypeWrapper.Value is typed as a plain int; it returns the enum's value.
_ERROR_TYPES = {
    e: cast(tasks_pb2.JobErrorType, tasks_pb2.JobErrorType.Value(f"JOB_ERROR_TYPE_{e.value}"))
    for e in m.ErrorType
}
_ERROR_TYPES_BACK = {v: k for k, v in _ERROR_TYPES.items()}


def state_to_proto(state: m.JobState) -> tasks_pb2.JobState:
    return _STATES[state]


#: ``value`` as a Timestamp (``taskmesh.timestamps.to_timestamp``): every job answered
#: carries two.
ts = to_timestamp


def from_ts(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def task_to_proto(task: m.Task) -> tasks_pb2.Task:
    created = ts(task.created_at)
    msg = tasks_pb2.Task(
        task_id=task.id,
        title=task.title,
        category=task.category,
        priority=jobs_pb2.Priority(
            level=task.priority_level, score=task.priority_score, reason=task.priority_reason
        ),
        subtasks=[
            tasks_pb2.Subtask(subtask_id=s.id, title=s.title, order=s.order) for s in task.subtasks
        ],
        create_time=created,
        # A task is written once: created and updated at once.
        update_time=created if task.updated_at == task.created_at else ts(task.updated_at),
        job_id=task.job_id,
    )
    if task.due_at is not None:
        msg.due_time.CopyFrom(ts(task.due_at))
    return msg


def job_to_proto(job: m.Job) -> tasks_pb2.Job:
    created = ts(job.created_at)
    msg = tasks_pb2.Job(
        job_id=job.id,
        state=_STATES[job.state],
        create_time=created,
        # A job's first answer (accepted) was created and updated at once.
        update_time=created if job.updated_at == job.created_at else ts(job.updated_at),
        attempts=job.attempts,
        user_id=job.user_id,
    )
    if job.task is not None:
        msg.task.CopyFrom(task_to_proto(job.task))
    if job.error is not None:
        msg.error.CopyFrom(
            tasks_pb2.JobError(
                type=_ERROR_TYPES[job.error.type],
                message=job.error.message,
                suggestions=job.error.suggestions,
            )
        )
    return msg


def draft_from_proto(out: jobs_pb2.ParseTaskOutput) -> m.TaskDraft:
    return m.TaskDraft(
        title=out.title,
        due_at=from_ts(out.due_time) if out.HasField("due_time") else None,
        category=out.category,
        priority_level=out.priority.level,
        priority_score=out.priority.score,
        priority_reason=out.priority.reason,
        subtasks=list(out.subtasks),
    )


def error_from_proto(err: tasks_pb2.JobError) -> m.JobError:
    return m.JobError(
        _ERROR_TYPES_BACK.get(err.type, m.ErrorType.INTERNAL), err.message, list(err.suggestions)
    )


def webhook_endpoint_to_proto(endpoint: wm.WebhookEndpoint) -> tasks_pb2.WebhookEndpoint:
    return tasks_pb2.WebhookEndpoint(
        endpoint_id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        create_time=ts(endpoint.created_at),
    )


def state_from_proto(state: tasks_pb2.JobState) -> m.JobState | None:
    """The domain state of a wire state; None for JOB_STATE_UNSPECIFIED (any)."""
    return _STATES_BACK.get(state)
