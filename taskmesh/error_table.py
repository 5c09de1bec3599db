"""The one table of the errors that reach a caller: each domain error type with
its gRPC status code, its ``google.rpc.ErrorInfo`` reason and the problem
document (RFC 9457) the gateway answers with. Both directions of the gRPC
mapping (``taskmesh.rpc.status``) and the gateway's problem documents
(``gateway.problems``) are read from here, so a new error is one row.

Sources: status codes and reasons are SPEC §6 (and §8 for the job failure
types); HTTP statuses and problem types are SPEC §5."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from taskmesh import errors

#: The ``ErrorInfo.domain`` every taskmesh service writes.
DOMAIN = "taskmesh"
#: Where problem ``type`` URIs live (they identify a kind; nothing is served there).
PROBLEM_BASE = "https://taskmesh.dev/problems/"


@dataclass(frozen=True)
class ProblemType:
    """One stable ``type`` URI per kind of problem, with its ``title`` and HTTP
    ``status`` (RFC 9457 §3.1)."""

    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        return PROBLEM_BASE + self.slug


INVALID_INPUT = ProblemType("invalid-input", "Invalid input", 400)
UNAUTHENTICATED = ProblemType("unauthenticated", "Authentication required", 401)
NOT_FOUND = ProblemType("not-found", "Not found", 404)
CONFLICT = ProblemType("conflict", "Conflict", 409)
IDEMPOTENCY_CONFLICT = ProblemType("idempotency-conflict", "Idempotency key reused", 422)
#: The 409 of a full collection: the caller has the most webhook endpoints allowed, and
#: registers another only after deleting one (the URL itself was fine).
WEBHOOK_LIMIT_REACHED = ProblemType("webhook-limit-reached", "Webhook endpoint limit reached", 409)
RATE_LIMITED = ProblemType("rate-limited", "Too many requests", 429)
#: The other 429 (SPEC §9): the user's LLM token budget for the window is spent. A client
#: reads it apart from the request rate by its type: waiting out Retry-After is the same
#: move, but slowing down does not help, and the wait may be hours rather than seconds.
TOKEN_BUDGET_EXHAUSTED = ProblemType("token-budget-exhausted", "Token budget exhausted", 429)
INTERNAL = ProblemType("internal", "Internal server error", 500)
UNAVAILABLE = ProblemType("unavailable", "Service unavailable", 503)


@dataclass(frozen=True)
class Received:
    """What a status carried: its message and rich details (google.rpc.*)."""

    message: str
    reason: str
    violations: Sequence[errors.FieldViolation]
    #: From ``RetryInfo``, seconds; None when absent.
    retry_after_s: float | None


Rebuild = Callable[[Received], errors.TaskmeshError]


@dataclass(frozen=True)
class ErrorKind:
    """One row: a domain error type and its faces on the wire.

    ``detail`` is what a client reads in the problem document; None means the
    error's own message, which the services write for clients (with
    ``fallback_detail`` when it is empty). ``rebuild`` turns a received status
    back into the domain error, so a caller handles it as if it were local."""

    error: type[errors.TaskmeshError]
    code: grpc.StatusCode
    problem: ProblemType
    rebuild: Rebuild
    detail: str | None = None
    fallback_detail: str = ""
    #: ``Retry-After`` for the HTTP answer when the error carries no ``retry_after_s``.
    retry_after_s: float | None = None

    @property
    def reason(self) -> str:
        """The ``ErrorInfo.reason``: the error type's own (``errors.*.reason``)."""
        return self.error.reason

    def problem_for(self, exc: errors.TaskmeshError) -> ProblemType:
        """The problem type a client reads for ``exc``, an error of this row: the row's, or
        the narrower one its ``reason`` names (the token budget's 429 apart from the request
        rate's)."""
        return _PROBLEM_BY_REASON.get(exc.reason, self.problem)


def _retry(received: Received) -> float:
    # A missing RetryInfo still must not invite a tight retry loop.
    return received.retry_after_s or 1.0


#: Most specific first: the first row whose type the error is an instance of wins.
KINDS: tuple[ErrorKind, ...] = (
    ErrorKind(
        errors.InjectionDetected,
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID_INPUT,
        lambda r: errors.InjectionDetected(),
        # SPEC §5: nothing about the detector reaches the client.
        detail="Invalid input provided.",
    ),
    ErrorKind(
        errors.InvalidInput,
        grpc.StatusCode.INVALID_ARGUMENT,
        INVALID_INPUT,
        lambda r: errors.InvalidInput(r.message, list(r.violations)),
        fallback_detail="The input is invalid.",
    ),
    ErrorKind(
        errors.NotFound,
        grpc.StatusCode.NOT_FOUND,
        NOT_FOUND,
        lambda r: errors.NotFound(r.message),
        fallback_detail="Not found.",
    ),
    ErrorKind(
        errors.Unauthenticated,
        grpc.StatusCode.UNAUTHENTICATED,
        UNAUTHENTICATED,
        lambda r: errors.Unauthenticated(r.message),
        detail="Missing or invalid API key.",
    ),
    ErrorKind(
        errors.IdempotencyConflict,
        grpc.StatusCode.FAILED_PRECONDITION,
        IDEMPOTENCY_CONFLICT,
        lambda r: errors.IdempotencyConflict(r.message),
        detail="This Idempotency-Key was already used with a different request body.",
    ),
    ErrorKind(
        errors.IdempotencyKeyInFlight,
        grpc.StatusCode.FAILED_PRECONDITION,
        CONFLICT,
        lambda r: errors.IdempotencyKeyInFlight(r.message),
        fallback_detail="Conflict.",
        # The first request with this key is still being processed: the answer is coming.
        retry_after_s=1.0,
    ),
    ErrorKind(
        errors.WebhookLimitReached,
        grpc.StatusCode.FAILED_PRECONDITION,
        WEBHOOK_LIMIT_REACHED,
        lambda r: errors.WebhookLimitReached(r.message),
        fallback_detail="Too many webhook endpoints; delete one first.",
    ),
    ErrorKind(
        errors.FailedPrecondition,
        grpc.StatusCode.FAILED_PRECONDITION,
        CONFLICT,
        lambda r: errors.FailedPrecondition(r.message),
        fallback_detail="Conflict.",
    ),
    ErrorKind(
        errors.ResourceExhausted,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        RATE_LIMITED,
        # The reason says which limit (request rate, token budget): kept as sent.
        lambda r: errors.ResourceExhausted(
            r.message, _retry(r), r.reason or errors.ResourceExhausted.reason
        ),
        fallback_detail="Too many requests; retry later.",
    ),
    ErrorKind(
        errors.Unavailable,
        grpc.StatusCode.UNAVAILABLE,
        UNAVAILABLE,
        # The downstream's message may name an address: not kept.
        lambda r: errors.Unavailable(retry_after_s=_retry(r)),
        detail="A dependency is temporarily unavailable; retry later.",
    ),
    ErrorKind(
        errors.TaskmeshError,
        grpc.StatusCode.INTERNAL,
        INTERNAL,
        lambda r: errors.TaskmeshError("Internal error."),
        detail="An unexpected error occurred. Quote the request id when reporting it.",
    ),
)

#: Codes no row sends but a call may end with: read as the row of another code.
_CODE_ALIASES = {grpc.StatusCode.DEADLINE_EXCEEDED: grpc.StatusCode.UNAVAILABLE}

_BY_REASON = {kind.reason: kind for kind in KINDS if kind.error is not errors.ResourceExhausted}
_BY_CODE: dict[grpc.StatusCode, ErrorKind] = {}
for _kind in reversed(KINDS):
    # The least specific row of a code answers a status without a known reason.
    _BY_CODE.setdefault(_kind.code, _kind)
del _kind


def kind_of(exc: errors.TaskmeshError) -> ErrorKind:
    """The row of an error: the first whose type it is an instance of (the base
    ``TaskmeshError`` row matches anything)."""
    for kind in KINDS:
        if isinstance(exc, kind.error):
            return kind
    raise AssertionError("the TaskmeshError row matches every error")  # pragma: no cover


def kind_for(code: grpc.StatusCode | None, reason: str) -> ErrorKind:
    """The row of a received status: by ``ErrorInfo.reason`` when it names a row
    of the same code, else by code; unknown codes are the internal row."""
    code = _CODE_ALIASES.get(code, code) if code is not None else None
    kind = _BY_REASON.get(reason)
    if kind is not None and kind.code == code:
        return kind
    return _BY_CODE.get(code, KINDS[-1]) if code is not None else KINDS[-1]


#: Problem types narrower than their row's, by the error's ``reason`` (a
#: ``ResourceExhausted`` names its limit).
_PROBLEM_BY_REASON = {errors.TOKEN_BUDGET_EXHAUSTED: TOKEN_BUDGET_EXHAUSTED}


def problem_types() -> tuple[ProblemType, ...]:
    """The problem types the table answers with, each once, in table order."""
    rows = [kind.problem for kind in KINDS]
    return tuple(dict.fromkeys([*rows, *_PROBLEM_BY_REASON.values()]))
