"""The token ledger (``ports.LedgerTx``, SPEC §8-§9): windows, reservations, earlier
runs' charges and per-call usage, with their statements beside the methods.

Every change to a window is one conditional UPDATE, so concurrent reservations
cannot overshoot the limit on either database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, bindparam, case, func, insert, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks.domain import models as m
from services.tasks.storage import tables as t

RESERVATIONS = t.Reservation.__table__
WINDOWS = t.TokenWindow.__table__
CHARGES = t.Charge.__table__
CALLS = t.LlmCallUsage.__table__

#: llm_call_usage.operation's length (tables.LlmCallUsage).
_OPERATION_CHARS = 40


class Ledger:
    """``ports.LedgerTx`` on one SQLAlchemy connection inside its transaction."""

    def __init__(self, c: AsyncConnection, dialect: str) -> None:
        self.c = c
        self._dialect = dialect

    async def reserve(self, user_id: str, window_start: int, tokens: int, limit: int) -> bool:
        fits = {"b_user": user_id, "b_window": window_start, "b_tokens": tokens, "b_limit": limit}
        if (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount == 1:  # type: ignore[attr-defined]
            return True
        # The window's first reservation: create the row (racing creators are
        # fine), then try again.
        ins = pg_insert if self._dialect == "postgresql" else sqlite_insert
        await self.c.execute(
            ins(WINDOWS)
            .values(user_id=user_id, window_start=window_start, used=0, reserved=0)
            .on_conflict_do_nothing()
        )
        return (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount == 1  # type: ignore[attr-defined]

    async def open(self, job_id: str, user_id: str, reservation: m.ReservationInfo) -> None:
        await self.c.execute(
            _INSERT_RESERVATION,
            {
                "job_id": job_id,
                "user_id": user_id,
                "window_start": reservation.window_start,
                "tokens": reservation.tokens,
            },
        )

    async def window(self, user_id: str, window_start: int) -> tuple[int, int]:
        row = (
            await self.c.execute(
                select(WINDOWS.c.used, WINDOWS.c.reserved).where(
                    WINDOWS.c.user_id == user_id, WINDOWS.c.window_start == window_start
                )
            )
        ).first()
        return (int(row.used), int(row.reserved)) if row else (0, 0)

    async def settle(self, job_id: str, actual: int | None, now: datetime) -> int | None:
        res = (
            await self.c.execute(_SETTLE, {"b_job": job_id, "b_now": now, "b_actual": actual})
        ).first()
        if res is None:
            return None
        await self._shift(res.user_id, res.window_start, reserved=-res.tokens, used=actual or 0)
        return int(res.tokens)

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
        await self._shift(res.user_id, res.window_start, reserved=0, used=actual)
        return True

    async def top_up(self, job_id: str, needed: int, limit: int) -> m.Admission:
        """Nothing to do when the reservation already covers ``needed``; else the
        difference is added to the reservation's own window with one conditional UPDATE
        (``used + reserved + delta <= limit``)."""
        query = select(
            RESERVATIONS.c.user_id, RESERVATIONS.c.window_start, RESERVATIONS.c.tokens
        ).where(RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None))
        if self._dialect == "postgresql":
            query = query.with_for_update()
        res = (await self.c.execute(query)).first()
        if res is None:
            return m.Admission(False, 0)
        held = int(res.tokens)
        delta = needed - held
        if delta <= 0:
            return m.Admission(True, held)
        fits = {
            "b_user": res.user_id,
            "b_window": res.window_start,
            "b_tokens": delta,
            "b_limit": limit,
        }
        if (await self.c.execute(_RESERVE_IF_FITS, fits)).rowcount != 1:  # type: ignore[attr-defined]
            return m.Admission(False, held)
        await self.c.execute(
            update(RESERVATIONS)
            .where(RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None))
            .values(tokens=needed)
        )
        return m.Admission(True, needed)

    async def reserved_tokens(self, job_id: str) -> int:
        held = await self.c.scalar(
            select(RESERVATIONS.c.tokens).where(
                RESERVATIONS.c.job_id == job_id, RESERVATIONS.c.settled_at.is_(None)
            )
        )
        return int(held or 0)

    async def record_calls(self, job_id: str, calls: list[m.CallUsage], now: datetime) -> None:
        """One multi-row INSERT."""
        if not calls:
            return
        await self.c.execute(
            _INSERT_CALLS,
            [
                {
                    "job_id": job_id,
                    "operation": call.operation[:_OPERATION_CHARS],
                    "input_tokens": call.input_tokens,
                    "output_tokens": call.output_tokens,
                    "estimated": call.estimated,
                    "recorded_at": now,
                }
                for call in calls
            ],
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

    async def _shift(self, user_id: str, window_start: int, *, reserved: int, used: int) -> None:
        """Moves a window's counters; the window is the reservation's own, never "now"."""
        await self.c.execute(
            _SHIFT,
            {"b_user": user_id, "b_window": window_start, "b_reserved": reserved, "b_used": used},
        )

    async def rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Charged counts the current runs' reservations and earlier runs' charges."""
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
        rows = await self.c.execute(
            select(entries.c.job_id, charged, recorded)
            .group_by(entries.c.job_id)
            .having(charged != recorded)
            .order_by(entries.c.job_id)
        )
        return [(row[0], int(row[1]), int(row[2])) for row in rows]


_RESERVE_IF_FITS = (
    update(WINDOWS)
    .where(
        WINDOWS.c.user_id == bindparam("b_user"),
        WINDOWS.c.window_start == bindparam("b_window"),
        WINDOWS.c.used + WINDOWS.c.reserved + bindparam("b_tokens") <= bindparam("b_limit"),
    )
    .values(reserved=WINDOWS.c.reserved + bindparam("b_tokens"))
)
_INSERT_CALLS = insert(CALLS)
_INSERT_RESERVATION = insert(RESERVATIONS)
_SETTLE = (
    update(RESERVATIONS)
    .where(RESERVATIONS.c.job_id == bindparam("b_job"), RESERVATIONS.c.settled_at.is_(None))
    .values(settled_at=bindparam("b_now"), actual_tokens=bindparam("b_actual"))
    .returning(RESERVATIONS.c.user_id, RESERVATIONS.c.window_start, RESERVATIONS.c.tokens)
)
_SHIFT = (
    update(WINDOWS)
    .where(
        WINDOWS.c.user_id == bindparam("b_user"), WINDOWS.c.window_start == bindparam("b_window")
    )
    .values(
        reserved=WINDOWS.c.reserved + bindparam("b_reserved"),
        used=WINDOWS.c.used + bindparam("b_used"),
    )
)
