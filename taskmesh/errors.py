"""Errors every layer may raise, free of transport. ``taskmesh.error_table``
gives each its gRPC status code and its problem document; ``reason`` is its
``google.rpc.ErrorInfo`` reason."""

from __future__ import annotations

from dataclasses import dataclass


class TaskmeshError(Exception):
    """Base of the errors that reach a caller; ``message`` is safe to show."""

    reason = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidInput(TaskmeshError):
    reason = "INVALID_INPUT"

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations = violations or []


class InjectionDetected(InvalidInput):
    """Text that looks like a prompt-injection attempt. The caller learns
    nothing about what matched."""

    reason = "PROMPT_INJECTION_DETECTED"

    def __init__(self) -> None:
        super().__init__("Invalid input provided.")


class NotFound(TaskmeshError):
    reason = "NOT_FOUND"


class Unauthenticated(TaskmeshError):
    reason = "UNAUTHENTICATED"


class IdempotencyConflict(TaskmeshError):
    reason = "IDEMPOTENCY_KEY_REUSED"


class FailedPrecondition(TaskmeshError):
    reason = "FAILED_PRECONDITION"


class IdempotencyKeyInFlight(FailedPrecondition):
    """A repeat of a keyed request whose first is still being processed (IETF
    Idempotency-Key draft: 409, retry later)."""

    reason = "IDEMPOTENCY_KEY_IN_FLIGHT"


class WebhookLimitReached(FailedPrecondition):
    """A user who already has the most webhook endpoints allowed registers another: the
    URL is fine, the collection is full (409; delete an endpoint first)."""

    reason = "WEBHOOK_LIMIT_REACHED"


#: ``ResourceExhausted.reason`` of the per-user request rate (SPEC §9).
RATE_LIMITED = "RATE_LIMITED"
#: ``ResourceExhausted.reason`` of the per-user LLM token budget (SPEC §9).
TOKEN_BUDGET_EXHAUSTED = "TOKEN_BUDGET_EXHAUSTED"


class ResourceExhausted(TaskmeshError):
    """Rate limit or token budget; ``retry_after_s`` says when to come back, ``reason``
    which limit (:data:`RATE_LIMITED`, :data:`TOKEN_BUDGET_EXHAUSTED`)."""

    #: Each instance names its limit; this one only when none was given.
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float, reason: str) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.0, retry_after_s)
        self.reason = reason


class Unavailable(TaskmeshError):
    """A dependency (broker, database, downstream service) is not answering."""

    reason = "UNAVAILABLE"

    def __init__(self, message: str = "A dependency is unavailable.", retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s
