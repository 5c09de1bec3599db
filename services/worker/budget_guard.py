"""The worker's CallGuard: no LLM call is made that the job's reservation does not
cover (SPEC §8 "the reservation covers what a job may still spend before each
further call, or that call is not made").

Before each call, or group of concurrent calls, the reservation must cover

    what earlier attempts spent + what this attempt committed + the next call's bound

where "committed" is the larger of the bounds admitted so far and what the attempt's
calls actually reported (an endpoint may report more than its bound), so the calls
still in flight are covered by their bounds. The first admission was made by StartJob
in the transaction that marked the job running (no extra RPC on the common path);
a further one that the reservation does not cover asks Tasks for a top-up
(ReserveTokens), which Tasks grants only if the reservation's window has room and the
job is still running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from taskmesh import errors
from taskmesh.capabilities.errors import BudgetRefused, LLMTransientError, UsageMeter

log = logging.getLogger(__name__)

#: Asks Tasks to make the reservation cover ``tokens`` in all (absolute); True when it does.
#: Raises taskmesh.errors.Unavailable when Tasks cannot answer.
TopUp = Callable[[int], Awaitable[bool]]


class Unconfirmed(LLMTransientError):
    """Tasks could not be asked for a top-up: the call is not made and the attempt is
    retried later (a transient outcome, with what it spent carried on)."""


class ReservationGuard:
    """Admits one attempt's LLM calls against its job's reservation.

    ``reserved``: the job's reservation after StartJob, tokens; ``start_granted``: whether
    StartJob admitted the first calls (when not, the first admission is refused without
    another RPC); ``prior_tokens``: what earlier attempts of the job spent; ``meter``: this
    attempt's calls as they end. ``top_up`` raising taskmesh.errors.Unavailable ends the
    admission in :class:`Unconfirmed`."""

    def __init__(
        self,
        top_up: TopUp,
        *,
        reserved: int,
        start_granted: bool,
        prior_tokens: int,
        meter: UsageMeter,
    ) -> None:
        self._top_up = top_up
        self._covered = reserved
        self._refuse_next = not start_granted
        self._prior = prior_tokens
        self._meter = meter
        self._committed = 0
        # Concurrent admissions must not both count the same headroom.
        self._lock = asyncio.Lock()

    @property
    def covered(self) -> int:
        """Tokens the reservation is known to cover."""
        return self._covered

    async def admit(self, tokens: int) -> None:
        """Returns when the reservation covers ``tokens`` more (topping it up if needed);
        raises BudgetRefused when it does not and Tasks refused a top-up."""
        async with self._lock:
            spent = self._spent()
            committed = max(self._committed, spent) + tokens
            needed = self._prior + committed
            if self._refuse_next:
                self._refuse_next = False
                raise BudgetRefused(f"the reservation does not cover {needed} tokens")
            if needed > self._covered:
                try:
                    granted = await self._top_up(needed)
                except errors.Unavailable as exc:
                    raise Unconfirmed(
                        "the token budget could not be confirmed", self._meter.usage()
                    ) from exc
                if not granted:
                    log.info("budget top-up refused", extra={"tokens": needed})
                    raise BudgetRefused(f"the window has no room for {needed} tokens")
                self._covered = needed
            self._committed = committed

    def _spent(self) -> int:
        usage = self._meter.usage()
        return int(usage.input_tokens + usage.output_tokens)
