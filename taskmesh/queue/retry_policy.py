"""When a job's next attempt runs: one object, built from settings, used by the
topology (which delay queues exist) and by the worker (which one a retry goes to).

Delays are served by delay queues with a fixed TTL each (no broker plugin): a
retry waits in the smallest queue whose TTL is at least the delay asked for, so
a wait is never shorter than asked (SPEC §7: "at least that long")."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Exponential backoff, seconds: the retry after failed attempt n waits BACKOFF_S[n-1]
#: (the last step repeats).
BACKOFF_S = (1, 2, 4, 8, 16, 30, 60)
#: Longest wait an LLM endpoint's Retry-After can impose on one job (SPEC §7).
RETRY_AFTER_CAP_S = 300
#: Extra delay queues for Retry-After windows longer than the longest backoff step.
LONG_WAITS_S = (120, RETRY_AFTER_CAP_S)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts``: LLM attempts a job may make (JOB_MAX_ATTEMPTS, SPEC §4).
    ``backoff_s``: exponential steps, seconds. ``jitter``: a fraction (0–1) by which a
    backoff delay may grow, so jobs failed together do not retry together; it moves
    a retry to a longer queue at most, never a shorter one.
    ``retry_after_cap_s``: an endpoint's Retry-After beyond this is cut to it."""

    max_attempts: int = 5
    backoff_s: tuple[int, ...] = BACKOFF_S
    jitter: float = 0.0
    retry_after_cap_s: int = RETRY_AFTER_CAP_S

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or not self.backoff_s or not 0 <= self.jitter <= 1:
            raise ValueError("max_attempts >= 1, backoff steps, jitter in [0, 1] required")

    @property
    def delays_s(self) -> tuple[int, ...]:
        """Every delay queue's TTL, seconds, ascending."""
        longest = max(self.backoff_s)
        extra = (d for d in (*LONG_WAITS_S, self.retry_after_cap_s) if d > longest)
        return tuple(sorted({*self.backoff_s, *extra}))

    def exhausted(self, attempts: int) -> bool:
        """True when ``attempts`` failed attempts leave none to make."""
        return attempts >= self.max_attempts

    def backoff(self, step: int, rng: random.Random | None = None) -> float:
        """Seconds before the retry after ``step`` (>= 1) failed attempts or waits."""
        base = self.backoff_s[min(max(step, 1), len(self.backoff_s)) - 1]
        if not self.jitter:
            return float(base)
        return base * (1 + (rng or random).uniform(0, self.jitter))

    def delay(self, step: int, retry_after_s: float | None = None) -> float:
        """The wait before the next attempt: the backoff, or the endpoint's
        Retry-After (capped) when that is longer."""
        wait = self.backoff(step)
        if retry_after_s is not None and retry_after_s > 0:
            wait = max(wait, min(retry_after_s, float(self.retry_after_cap_s)))
        return wait

    def queue_delay(self, seconds: float) -> int:
        """The TTL of the delay queue that serves a wait of ``seconds``: the smallest one
        at least that long (the longest one past the cap)."""
        for ttl in self.delays_s:
            if ttl >= seconds:
                return ttl
        return self.delays_s[-1]
