"""The worker's decision table (SPEC §7) as a pure function: no broker, no I/O."""

from __future__ import annotations

import pytest

from services.worker.decisions import (
    Complete,
    Crashed,
    DeadLetter,
    Delivery,
    NotRunnable,
    Reason,
    RetryAt,
    Skip,
    TasksUnavailable,
    Transient,
    Undecodable,
    UnknownJob,
    decide,
)
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.tasks.v1 import tasks_pb2
from tests.worker.doubles import a_job, succeeded, usage

POLICY = RetryPolicy(max_attempts=5)


def test_a_finished_job_is_reported_and_not_dead_lettered():
    outcome = succeeded(a_job())
    assert decide("job-1", outcome, Delivery(), POLICY) == Complete(outcome.request)


def test_a_transient_failure_with_attempts_left_waits_its_backoff_and_carries_its_usage():
    decision = decide("job-1", Transient("llm: 500", usage(300)), Delivery(attempts=1), POLICY)
    assert isinstance(decision, RetryAt)
    assert (decision.attempts, decision.delay_s) == (2, POLICY.backoff(2))
    assert decision.reason is Reason.LLM_TRANSIENT
    assert decision.usage == usage(300)


@pytest.mark.parametrize(("retry_after", "at_least"), [(25, 25), (0.5, 1), (3600, 300)])
def test_retry_after_delays_the_next_attempt_at_least_that_long_capped_at_five_minutes(
    retry_after, at_least
):
    decision = decide("job-1", Transient("llm: 429", usage(0), retry_after), Delivery(), POLICY)
    assert isinstance(decision, RetryAt) and decision.reason is Reason.LLM_RATE_LIMITED
    assert at_least <= decision.delay_s <= max(at_least, POLICY.backoff(1))
    # The delay queue that serves it never waits less than asked.
    assert POLICY.queue_delay(decision.delay_s) >= decision.delay_s
    assert POLICY.queue_delay(decision.delay_s) <= 300


def test_the_last_transient_failure_fails_the_job_charged_and_keeps_a_dead_letter():
    spent = usage(1234, calls=5)
    decision = decide("job-1", Transient("llm: 500", spent), Delivery(attempts=4), POLICY)
    assert isinstance(decision, Complete) and decision.dead_letter
    assert decision.request.error.type == tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED
    assert decision.request.usage == spent
    assert "5 times" in decision.request.error.message


def test_a_crash_in_the_handler_ends_the_job_at_once_with_its_tokens_charged():
    decision = decide("job-1", Crashed(usage(777), "OverflowError"), Delivery(), POLICY)
    assert isinstance(decision, Complete) and decision.dead_letter
    assert decision.reason is Reason.HANDLER_ERROR
    assert decision.request.error.type == tasks_pb2.JOB_ERROR_TYPE_INTERNAL
    assert decision.request.usage == usage(777)
    assert "OverflowError" not in decision.request.error.message  # nothing internal leaks


def test_tasks_unavailable_parks_the_outcome_without_spending_an_attempt():
    outcome = succeeded(a_job())
    decision = decide(
        "job-1", TasksUnavailable(outcome.request), Delivery(attempts=2, waits=1), POLICY
    )
    assert isinstance(decision, RetryAt)
    assert (decision.attempts, decision.waits) == (2, 2)
    assert decision.outcome == outcome.request.SerializeToString()


def test_a_parked_failure_that_needed_a_dead_letter_still_gets_one():
    exhausted = decide("job-1", Transient("x", usage(1)), Delivery(attempts=4), POLICY)
    assert isinstance(exhausted, Complete)
    from services.worker.decisions import Finished

    replayed = decide("job-1", Finished(exhausted.request), Delivery(attempts=5), POLICY)
    assert isinstance(replayed, Complete) and replayed.dead_letter


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Undecodable("body is not a CapabilityJob"), DeadLetter),
        (UnknownJob(), DeadLetter),
        (NotRunnable("JOB_STATE_SUCCEEDED"), Skip),
    ],
)
def test_messages_that_cannot_run_are_dead_lettered_or_skipped(outcome, expected):
    assert isinstance(decide("job-1", outcome, Delivery(), POLICY), expected)


def test_every_delay_has_a_queue_and_waits_are_bounded():
    for attempts in range(1, 30):
        assert POLICY.backoff(attempts) in POLICY.delays_s
    assert max(POLICY.delays_s) == 300
