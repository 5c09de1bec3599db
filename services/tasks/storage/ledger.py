"""The token ledger (``ports.LedgerTx``, SPEC §8-§9): windows, reservations, earlier
runs' charges and per-call usage, with their statements beside the methods.

Every change to a window is one conditional UPDATE, so concurrent reservations
cannot overshoot the limit on either database.

What settles a reservation (a terminal transition, a late charge) only moves counters
down or into ``used`` and checks nothing, so those moves are summed per window and
written once per window, by :meth:`Ledger.flush`, before the transaction commits or a
statement reads or checks a window: a batch of CompleteJobs of one user pays one window
UPDATE, not one per job (issue #12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, case, func, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.storage import tables as t
from services.tasks.storage.driver import Driver

RESERVATIONS = t.Reservation.__table__
WINDOWS = t.TokenWindow.__table__
CHARGES = t.Charge.__table__
CALLS = t.LlmCallUsage.__table__

#: llm_call_usage.operation's length (tables.LlmCallUsage).
_OPERATION_CHARS = 40


class Ledger:
    """``ports.LedgerTx`` on one SQLAlchemy connection inside its transaction."""

    def __init__(self, c: AsyncConnection, driver: Driver) -> None:
        self.c = c
        self._sql = driver
        self._pg = driver.dialect == "postgresql"
        # (user id, window start) -> [reserved delta, used delta], not written yet.
        self._moves: dict[tuple[str, int], list[int]] = {}
        # llm_call_usage rows recorded, not written yet (written by flush).
        self._calls: list[tuple[Any, ...]] = []

    async def flush(self) -> None:
        """Writes the window moves this transaction has summed: one UPDATE per window, in
        (user, window) order (writers that lock several windows take them in one order,
        so they cannot deadlock on PostgreSQL); and the recorded calls, one ``executemany``
        for the transaction's (a CompleteJobs batch's) jobs. The store calls it before
        COMMIT; every statement here that reads or checks a window or the calls calls it
        first."""
        if self._calls:
            calls, self._calls = self._calls, []
            await self._sql.executemany(_INSERT_CALLS, calls)
        if not self._moves:
            return
        moves = sorted(self._moves.items())
        self._moves = {}
        if len(moves) == 1:
            (user_id, window_start), (reserved, used) = moves[0]
            await self._sql.execute(_SHIFT, user_id, window_start, reserved, used)
        else:
            await self._sql.executemany(
                _SHIFT,
                [(user, window, reserved, used) for (user, window), (reserved, used) in moves],
            )

    async def reserve(self, user_id: str, window_start: int, tokens: int, limit: int) -> bool:
        """One statement: an upsert whose update is conditional (``used + reserved +
        tokens <= limit``), so the window's first reservation needs no second round."""
        if tokens > limit:
            return False
        await self.flush()
        return await self._sql.execute(_RESERVE, user_id, window_start, tokens, limit) == 1

    async def open(self, job_id: str, user_id: str, reservation: m.ReservationInfo) -> None:
        await self._sql.execute(
            _OPEN, job_id, user_id, reservation.window_start, reservation.tokens
        )

    async def open_many(self, jobs: list[tuple[str, str]], reservation: m.ReservationInfo) -> None:
        """One ``executemany`` (asyncpg pipelines it: one round trip)."""
        if len(jobs) == 1:
            await self.open(jobs[0][0], jobs[0][1], reservation)
        elif jobs:
            window, tokens = reservation.window_start, reservation.tokens
            await self._sql.executemany(
                _OPEN, [(job_id, user_id, window, tokens) for job_id, user_id in jobs]
            )

    async def window(self, user_id: str, window_start: int) -> tuple[int, int]:
        await self.flush()
        row = (
            await self.c.execute(
                select(WINDOWS.c.used, WINDOWS.c.reserved).where(
                    WINDOWS.c.user_id == user_id, WINDOWS.c.window_start == window_start
                )
            )
        ).first()
        return (int(row.used), int(row.reserved)) if row else (0, 0)

    async def settle(self, job_id: str, actual: int | None, now: datetime) -> int | None:
        res = await self._sql.fetchone(_SETTLE, job_id, self._sql.ts(now), actual)
        if res is None:
            return None
        user_id, window_start, tokens = res
        self._shift(user_id, window_start, reserved=-tokens, used=actual or 0)
        return int(tokens)

    async def charge_late(self, job_id: str, actual: int) -> bool:
        res = (
            await self.c.execute(
                update(RESERVATIONS)
                .where(
                    RESERVATIONS.c.job_id == job_id,
                    RESERVATIONS.c.settled_at.is_not(None),
                    RESERVATIONS.c.actual_tokens.is_(None),
                )
                .values(actual_tokens=actual)
                .returning(RESERVATIONS.c.user_id, RESERVATIONS.c.window_start)
            )
        ).first()
        if res is None:
            return False
        self._shift(res.user_id, res.window_start, reserved=0, used=actual)
        return True

    async def top_up(self, job_id: str, needed: int, limit: int) -> m.Admission:
        """Nothing to do when the reservation already covers ``needed``; else the
        difference is added to the reservation's own window with one conditional UPDATE
        (``used + reserved + delta <= limit``)."""
        res = await self._sql.fetchone(
            _OPEN_RESERVATION_PG if self._pg else _OPEN_RESERVATION, job_id
        )
        if res is None:
            return m.Admission(False, 0)
        user_id, window_start, held = res[0], res[1], int(res[2])
        delta = needed - held
        if delta <= 0:
            return m.Admission(True, held)
        await self.flush()
        if await self._sql.execute(_ADD_IF_FITS, user_id, window_start, delta, limit) != 1:
            return m.Admission(False, held)
        await self._sql.execute(_RESIZE, job_id, needed)
        return m.Admission(True, needed)

    async def reserved_tokens(self, job_id: str) -> int:
        res = await self._sql.fetchone(_OPEN_RESERVATION, job_id)
        return int(res[2]) if res is not None else 0

    async def record_calls(self, job_id: str, calls: list[m.CallUsage], now: datetime) -> None:
        """Holds the rows back for :meth:`flush` (before the commit)."""
        if not calls:
            return
        at = self._sql.ts(now)
        self._calls.extend(
            (
                job_id,
                call.operation[:_OPERATION_CHARS],
                call.input_tokens,
                call.output_tokens,
                call.estimated,
                at,
            )
            for call in calls
        )

    async def renew(self, job_id: str, window_start: int, tokens: int, limit: int) -> bool:
        old = (
            await self.c.execute(
                select(RESERVATIONS).where(
                    RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_not(None)
                )
            )
        ).first()
        if old is None or not await self.reserve(old.user_id, window_start, tokens, limit):
            return False
        runs = await self.c.scalar(
            select(func.count()).select_from(CHARGES).where(CHARGES.c.job_id == job_id)
        )
        await self.c.execute(
            insert(CHARGES).values(
                job_id=job_id,
                run=int(runs or 0) + 1,
                user_id=old.user_id,
                window_start=old.window_start,
                tokens=old.actual_tokens or 0,
                charged_at=old.settled_at,
            )
        )
        await self.c.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.job_id == job_id)
            .values(window_start=window_start, tokens=tokens, actual_tokens=None, settled_at=None)
        )
        return True

    def _shift(self, user_id: str, window_start: int, *, reserved: int, used: int) -> None:
        """Moves a window's counters (written by :meth:`flush`); the window is the
        reservation's own, never "now"."""
        move = self._moves.setdefault((user_id, int(window_start)), [0, 0])
        move[0] += reserved
        move[1] += used

    async def rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Charged counts the current runs' reservations and earlier runs' charges."""
        await self.flush()
        entries = union_all(
            select(
                RESERVATIONS.c.user_id.label("user_id"),
                RESERVATIONS.c.window_start.label("window_start"),
                func.coalesce(RESERVATIONS.c.actual_tokens, 0).label("charged"),
                case((RESERVATIONS.c.settled_at.is_(None), RESERVATIONS.c.tokens), else_=0).label(
                    "open"
                ),
            ),
            select(
                CHARGES.c.user_id,
                CHARGES.c.window_start,
                CHARGES.c.tokens,
                literal(0, BigInteger),
            ),
        ).subquery()
        charged = (
            select(
                entries.c.user_id,
                entries.c.window_start,
                func.coalesce(func.sum(entries.c.charged), 0).label("charged"),
                func.coalesce(func.sum(entries.c.open), 0).label("open"),
            )
            .group_by(entries.c.user_id, entries.c.window_start)
            .subquery()
        )
        rows = await self.c.execute(
            select(
                WINDOWS.c.user_id,
                WINDOWS.c.window_start,
                WINDOWS.c.used,
                WINDOWS.c.reserved,
                func.coalesce(charged.c.charged, 0),
                func.coalesce(charged.c.open, 0),
            ).outerjoin(
                charged,
                (charged.c.user_id == WINDOWS.c.user_id)
                & (charged.c.window_start == WINDOWS.c.window_start),
            )
        )
        return [
            (row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            for row in rows
        ]

    async def job_mismatches(self) -> list[tuple[str, int, int]]:
        """Charged = the settled reservation's actual tokens + earlier runs' charges
        (token_charges); recorded = Σ llm_call_usage."""
        entries = union_all(
            select(
                RESERVATIONS.c.job_id.label("job_id"),
                func.coalesce(RESERVATIONS.c.actual_tokens, 0).label("charged"),
                literal(0, BigInteger).label("recorded"),
            ),
            select(CHARGES.c.job_id, CHARGES.c.tokens, literal(0, BigInteger)),
            select(
                CALLS.c.job_id,
                literal(0, BigInteger),
                CALLS.c.input_tokens + CALLS.c.output_tokens,
            ),
        ).subquery()
        charged = func.coalesce(func.sum(entries.c.charged), 0)
        recorded = func.coalesce(func.sum(entries.c.recorded), 0)
        await self.flush()
        rows = await self.c.execute(
            select(entries.c.job_id, charged, recorded)
            .group_by(entries.c.job_id)
            .having(charged != recorded)
            .order_by(entries.c.job_id)
        )
        return [(row[0], int(row[1]), int(row[2])) for row in rows]


# The statements every job runs, straight to the driver (driver.py).

#: The window's row with the tokens reserved, or the tokens added to it if they fit
#: (``used + reserved + tokens <= limit``): one statement, 0 rows when they do not.
#: PostgreSQL re-checks the condition on the conflicting row under its lock.
_RESERVE = (
    "INSERT INTO token_windows (user_id, window_start, used, reserved) VALUES ($1, $2, 0, $3)"
    " ON CONFLICT (user_id, window_start) DO UPDATE"
    " SET reserved = token_windows.reserved + excluded.reserved"
    " WHERE token_windows.used + token_windows.reserved + excluded.reserved <= $4"
)
_ADD_IF_FITS = (
    "UPDATE token_windows SET reserved = reserved + $3"
    " WHERE user_id = $1 AND window_start = $2 AND used + reserved + $3 <= $4"
)
_OPEN = (
    "INSERT INTO token_reservations (job_id, user_id, window_start, tokens) VALUES ($1, $2, $3, $4)"
)
_OPEN_RESERVATION = (
    "SELECT user_id, window_start, tokens FROM token_reservations"
    " WHERE job_id = $1 AND settled_at IS NULL"
)
_OPEN_RESERVATION_PG = _OPEN_RESERVATION + " FOR UPDATE"
_RESIZE = "UPDATE token_reservations SET tokens = $2 WHERE job_id = $1 AND settled_at IS NULL"
_SETTLE = (
    "UPDATE token_reservations SET settled_at = $2, actual_tokens = $3"
    " WHERE job_id = $1 AND settled_at IS NULL RETURNING user_id, window_start, tokens"
)
_SHIFT = (
    "UPDATE token_windows SET reserved = reserved + $3, used = used + $4"
    " WHERE user_id = $1 AND window_start = $2"
)
_INSERT_CALLS = (
    "INSERT INTO llm_call_usage"
    " (job_id, operation, input_tokens, output_tokens, estimated, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
