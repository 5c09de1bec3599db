"""A job's states as every process outside the Tasks service reads them, derived
from the wire enum ``taskmesh.tasks.v1.JobState``: the client-facing name of each
(``JOB_STATE_SUCCEEDED`` → ``succeeded``), which are open and which terminal.

The rules themselves belong to the Tasks service
(``services/tasks/domain/lifecycle.py``: a job is open while queued or running,
every other state is terminal); ``tests/test_job_states.py`` holds this module
to them, since a shared module may not import a service."""

from __future__ import annotations

from typing import cast

from taskmesh.tasks.v1 import tasks_pb2

_PREFIX = "JOB_STATE_"


def status_name(state: int) -> str:
    """The name clients see for a wire state (``JOB_STATE_SUCCEEDED`` → ``succeeded``).
    Raises ValueError for a number the enum does not know."""
    return tasks_pb2.JobState.Name(state).removeprefix(_PREFIX).lower()


#: A wire job state (a value of the ``tasks.v1.JobState`` enum).
State = tasks_pb2.JobState

#: Every state by the name clients see (UNSPECIFIED, "any state" in filters, left out).
STATES: dict[str, State] = {
    status_name(value): cast(State, value)
    for value in tasks_pb2.JobState.values()
    if value != tasks_pb2.JOB_STATE_UNSPECIFIED
}
#: States a job may still leave by running: StartJob lets a run begin only in these.
OPEN_STATES: frozenset[State] = frozenset({tasks_pb2.JOB_STATE_QUEUED, tasks_pb2.JOB_STATE_RUNNING})
#: States after which nothing changes for the job's user (a dead-letter replay, an
#: operator's act, aside).
TERMINAL_STATES: frozenset[State] = frozenset(STATES.values()) - OPEN_STATES
#: Their names: ``succeeded``, ``failed``, ``cancelled`` (and ``withdrawn``, never shown
#: to a user: the job was not accepted).
TERMINAL: frozenset[str] = frozenset(status_name(state) for state in TERMINAL_STATES)
#: The states a job's user can see: all but WITHDRAWN (answered 503, never accepted).
VISIBLE_STATES: dict[str, State] = {
    name: value for name, value in STATES.items() if value != tasks_pb2.JOB_STATE_WITHDRAWN
}
