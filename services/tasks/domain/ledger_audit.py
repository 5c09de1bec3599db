"""The token ledger's audit (``taskmesh ledger check``, SPEC §8 "every LLM call is charged").

Two findings, both read in one transaction: a window whose counters (used, reserved)
disagree with the reservations and charges behind it, and a job whose charge differs
from the sum of its recorded LLM calls. Read-only: it reports, never repairs."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


class LedgerReads(Protocol):
    """The reads the audit needs from a Tasks store transaction."""

    async def ledger_rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per user and window: (user, window start, used, reserved, Σ charged, Σ open)."""
        ...

    async def ledger_job_mismatches(self) -> list[tuple[str, int, int]]:
        """(job, Σ charged, Σ recorded calls) for jobs where the two differ."""
        ...


class LedgerStore(Protocol):
    """A Tasks store: ``read()`` opens a read transaction."""

    def read(self) -> AbstractAsyncContextManager[LedgerReads]: ...


@dataclass(frozen=True)
class WindowMismatch:
    """One user's window (``window_start``, Unix seconds) whose counters are off:
    ``used``/``reserved`` as stored, ``charged``/``open_reserved`` as the reservations
    and charges add up (tokens)."""

    user_id: str
    window_start: int
    used: int
    reserved: int
    charged: int
    open_reserved: int


@dataclass(frozen=True)
class JobMismatch:
    """A job charged ``charged`` tokens whose recorded LLM calls sum to ``recorded``."""

    job_id: str
    charged: int
    recorded: int


@dataclass(frozen=True)
class LedgerReport:
    """``windows_checked`` windows compared; the mismatches found (empty when balanced)."""

    windows_checked: int
    windows: list[WindowMismatch]
    jobs: list[JobMismatch]

    @property
    def balanced(self) -> bool:
        return not self.windows and not self.jobs


def _off(used: int, reserved: int, charged: int, open_reserved: int) -> bool:
    # A window balances when used = Σ charged and reserved = Σ still-open reservations,
    # and neither counter went negative (a double release).
    return used != charged or reserved != open_reserved or used < 0 or reserved < 0


async def check_ledger(store: LedgerStore) -> LedgerReport:
    """Audits the whole ledger of ``store`` in one read transaction."""
    async with store.read() as tx:
        rows = await tx.ledger_rows()
        jobs = await tx.ledger_job_mismatches()
    windows = [WindowMismatch(*row) for row in rows if _off(*row[2:])]
    return LedgerReport(len(rows), windows, [JobMismatch(*job) for job in jobs])
