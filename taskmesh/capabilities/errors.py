"""What a capability run can end in besides a result, and the hooks its caller uses to bound
and observe what it spends.

The worker (services/worker) turns each error into a job outcome:

- :class:`LLMTransientError` -> a delayed retry (at least ``retry_after_s`` later), then
  ``RETRIES_EXHAUSTED``;
- :class:`LLMRejectedError` -> ``LLM_REJECTED`` at once, with ``detail`` shown to the user;
- :class:`InvalidOutputError` -> ``INVALID_OUTPUT`` with ``errors``;
- :class:`BudgetExhaustedError` -> ``BUDGET_EXHAUSTED`` (SPEC §8: a further call that the
  reservation does not cover is not made).

Every :class:`CapabilityError` carries ``usage``: the tokens of every LLM call made so far,
failed, vague and abandoned ones included (SPEC §8 "every LLM call is charged")."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from taskmesh.jobs.v1 import jobs_pb2

#: Longest endpoint message passed on to a user (contract: <= 200 characters).
MAX_DETAIL_CHARS = 200


class CapabilityError(Exception):
    """A run that produced no result; ``usage`` (``jobs_pb2.TokenUsage``) is still owed."""

    def __init__(self, message: str, usage: jobs_pb2.TokenUsage | None = None) -> None:
        super().__init__(message)
        self.usage = usage if usage is not None else jobs_pb2.TokenUsage()


class LLMTransientError(CapabilityError):
    """429, 5xx, 408, 409, a timeout, a connection failure or an unreadable response: another
    attempt later may succeed.

    ``retry_after_s`` is the endpoint's ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110
    §10.2.3) or ``retry-after-ms`` header in seconds, uncapped (the caller caps it), or None
    when the endpoint gave none."""

    def __init__(
        self,
        message: str,
        usage: jobs_pb2.TokenUsage | None = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, usage)
        self.retry_after_s = retry_after_s


class LLMRejectedError(CapabilityError):
    """The endpoint refused the request deterministically (a 4xx other than 408/409/429:
    context too long, unknown model, bad request, bad key). Retrying it unchanged cannot help.

    ``detail`` is the endpoint's own message, sanitised by :func:`sanitise_detail` (no URLs,
    addresses or keys) and cut to at most 200 characters, fit to show to a user."""

    def __init__(
        self, message: str, usage: jobs_pb2.TokenUsage | None = None, *, detail: str = ""
    ) -> None:
        super().__init__(message, usage)
        self.detail = sanitise_detail(detail)


class InvalidOutputError(CapabilityError):
    """The model's answer failed validation on every attempt; ``errors`` name the broken
    rules in words a user can act on (e.g. "the title must have 2-8 words")."""

    def __init__(
        self,
        message: str,
        usage: jobs_pb2.TokenUsage | None = None,
        errors: Sequence[str] = (),
    ) -> None:
        super().__init__(message, usage)
        self.errors = list(errors)


class BudgetRefused(Exception):
    """Raised by a :class:`CallGuard` when the next call(s) are not covered by the job's
    reservation (or a top-up). Carries no usage: the guard does not know it."""


class BudgetExhaustedError(CapabilityError):
    """The guard refused a further call; the run stopped there with ``usage`` spent."""


class CallGuard(Protocol):
    """Admits LLM calls against a job's budget (SPEC §8, §9)."""

    async def admit(self, tokens: int) -> None:
        """Called before each LLM call, or group of concurrent calls, with ``tokens`` = the
        most those calls can cost (estimated prompt tokens + each call's ``max_tokens``,
        summed). Returns when covered; raises :class:`BudgetRefused` otherwise."""
        ...


@dataclass(frozen=True)
class CallRecord:
    """One LLM call as the meter saw it end."""

    operation: str
    input_tokens: int
    output_tokens: int
    estimated: bool


class UsageMeter:
    """Accumulates the usage of a run's LLM calls as each one ends.

    The handler records into it; the caller keeps a reference, so what was spent is known even
    when the caller cancels the task running the handler. A call that was abandoned
    (cancellation, client timeout) or whose response had no ``usage`` is recorded with an
    estimate and ``estimated=True``: for an abandoned call the estimate is its bound (prompt
    estimate + ``max_tokens``), since the server may have generated that much (issue 14.2)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []

    def record(
        self, operation: str, input_tokens: int, output_tokens: int, estimated: bool = False
    ) -> None:
        """Adds one ended call. Token counts below zero are taken as zero."""
        call = CallRecord(operation, max(0, input_tokens), max(0, output_tokens), estimated)
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    @property
    def estimated_calls(self) -> int:
        """How many recorded calls were charged an estimate rather than a reported usage."""
        return sum(1 for c in self.calls if c.estimated)

    def usage(self) -> jobs_pb2.TokenUsage:
        """The sum of every recorded call, as a fresh ``TokenUsage``."""
        calls = self.calls
        return jobs_pb2.TokenUsage(
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            llm_calls=len(calls),
        )


# --- sanitising endpoint messages --------------------------------------------------------------

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
# Full IPv6 forms (3+ colons, so times like 12:30:45 stay) and compressed ones ("::").
_IPV6 = re.compile(
    r"\[?(?:\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b|[0-9a-fA-F:]*::[0-9a-fA-F:]*[0-9a-fA-F])"
    r"\]?(?::\d+)?"
)
_HOST_PORT = re.compile(r"\b(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+):\d{2,5}\b")
# API keys as the common providers shape them (sk-..., tm_..., Bearer tokens) and any long
# unbroken run of key-like characters.
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_KEY = re.compile(r"\b(?:sk|pk|rk|tm|key|api)[-_][A-Za-z0-9_-]{6,}")
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9_\-]{32,}\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def sanitise_detail(message: object, limit: int = MAX_DETAIL_CHARS) -> str:
    """An endpoint's error message made safe to show a user: URLs, e-mail and network
    addresses, bearer tokens and key-like strings replaced by ``[redacted]``, control
    characters and runs of whitespace collapsed, cut to ``limit`` characters (with "…").
    Never raises; a non-string becomes its ``str()``."""
    try:
        text = message if isinstance(message, str) else str(message)
    except Exception:
        return ""
    text = _CONTROL.sub(" ", text)
    for pattern in (_BEARER, _URL, _EMAIL, _HOST_PORT, _IPV6, _IPV4, _KEY, _LONG_TOKEN):
        text = pattern.sub("[redacted]", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
