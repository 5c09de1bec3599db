"""The error table read both ways: every domain error survives a trip through a
gRPC status as the same error, and every row is reachable from the wire."""

from __future__ import annotations

import inspect

import grpc
import pytest

from taskmesh import error_table, errors
from taskmesh.rpc.status import from_rpc_error, to_status

#: One instance of every error type a caller may receive.
SAMPLES: list[errors.TaskmeshError] = [
    errors.InjectionDetected(),
    errors.InvalidInput(
        "naturalLanguage is too long.", [errors.FieldViolation("natural_language", "too long")]
    ),
    errors.InvalidInput("The input is vague."),
    errors.NotFound("Job not found."),
    errors.Unauthenticated("Invalid API key."),
    errors.IdempotencyConflict("Another body."),
    errors.IdempotencyKeyInFlight("Still being processed."),
    errors.WebhookLimitReached("At most 10 webhook endpoints per user."),
    errors.FailedPrecondition("The job has already finished."),
    errors.ResourceExhausted("Token budget exhausted.", 42.5, "TOKEN_BUDGET_EXHAUSTED"),
    errors.Unavailable(retry_after_s=3.0),
    errors.TaskmeshError("Internal error."),
]


def _over_the_wire(exc: errors.TaskmeshError) -> errors.TaskmeshError:
    code, status = to_status(exc)
    assert code == status.code
    received = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    return from_rpc_error(received)


def test_every_error_type_has_its_own_row():
    types = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.TaskmeshError)
    }
    assert {kind.error for kind in error_table.KINDS} == types
    assert {type(sample) for sample in SAMPLES} == types
    for sample in SAMPLES:
        assert error_table.kind_of(sample).error is type(sample)


def test_reasons_are_unique():
    reasons = [kind.reason for kind in error_table.KINDS]
    assert len(reasons) == len(set(reasons))


@pytest.mark.parametrize("sent", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_error_comes_back_as_itself(sent):
    got = _over_the_wire(sent)
    assert type(got) is type(sent)
    assert got.reason == sent.reason
    assert getattr(got, "violations", []) == getattr(sent, "violations", [])
    if error_table.kind_of(sent).detail is None:
        assert got.message == sent.message
    if isinstance(sent, errors.ResourceExhausted | errors.Unavailable):
        assert got.retry_after_s >= sent.retry_after_s


def test_injection_travels_under_its_own_reason():
    assert errors.InjectionDetected().reason == "PROMPT_INJECTION_DETECTED"
    assert isinstance(_over_the_wire(errors.InjectionDetected()), errors.InjectionDetected)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unavailable),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidInput),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.UNKNOWN, errors.TaskmeshError),
    ],
)
def test_a_status_without_details_is_read_by_its_code(code, expected):
    bare = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")
    assert type(from_rpc_error(bare)) is expected


def test_a_reason_of_another_code_does_not_change_the_type():
    """A reason is trusted only with its own code: an UNAVAILABLE that says
    NOT_FOUND is still a dependency down."""
    kind = error_table.kind_for(grpc.StatusCode.UNAVAILABLE, errors.NotFound.reason)
    assert kind.error is errors.Unavailable
