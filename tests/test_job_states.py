"""The job-state catalogue outside the Tasks service (``taskmesh.job_states``)
agrees with the Tasks service's lifecycle, the one source of what is terminal."""

from __future__ import annotations

from typing import get_args

from gateway.schemas import JobStatus
from services.tasks.domain.lifecycle import JobState
from taskmesh import job_states


def test_every_lifecycle_state_has_a_wire_state_of_the_same_name():
    assert set(job_states.STATES) == {state.value for state in JobState}


def test_terminal_states_are_the_lifecycles():
    assert job_states.TERMINAL == {state.value for state in JobState if state.terminal}
    open_names = {job_states.status_name(s) for s in job_states.OPEN_STATES}
    assert open_names == {state.value for state in JobState if not state.terminal}


def test_the_http_statuses_are_the_states_a_user_can_see():
    assert set(get_args(JobStatus)) == {state.value for state in JobState if state.visible}
    assert set(job_states.VISIBLE_STATES) == set(get_args(JobStatus))
