"""Domain model helpers that spell out what ``dataclasses`` would do, checked against it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from services.tasks.domain import models as m


def test_with_task_keeps_every_other_field_of_the_job() -> None:
    # Job.with_task names each field itself (for speed); a field added to Job and not to it
    # would silently reset to its default on every completion.
    values = {
        "id": "job-1",
        "user_id": "user-1",
        "state": m.JobState.RUNNING,
        "natural_language": "Pay rent",
        "request_id": "req-1",
        "attempts": 2,
        "version": 3,
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 3, tzinfo=UTC),
        "error": None,
        "task": None,
        "dispatched_at": datetime(2026, 1, 4, tzinfo=UTC),
    }
    assert set(values) == {f.name for f in dataclasses.fields(m.Job)}
    job = m.Job(**values)
    task = object()
    assert job.with_task(task) == dataclasses.replace(job, task=task)  # type: ignore[arg-type]
