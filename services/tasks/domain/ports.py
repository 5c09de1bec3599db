"""What the Tasks domain needs from the world outside it, declared here so that the
domain depends on nothing below it (the hexagonal "ports"; adapters in
``services.tasks.storage`` implement them, ``services.tasks.main`` wires them).

A ``Store`` opens transactions; a ``Tx`` is one transaction, split by area: ``tx.users``
(users and API keys), ``tx.ledger`` (token windows, reservations, charges and per-call
usage, SPEC §9), ``tx.jobs``, ``tx.tasks`` and ``tx.webhooks`` (endpoints; the outbox rows
are written by ``tx.jobs.finish``). Every method runs inside the transaction it was
reached through, so the domain decides the transaction boundary (CompleteJob: task +
job state + ledger in one).

Times are timezone-aware UTC ``datetime``; tokens are LLM tokens (input + output);
window starts are epoch seconds (``BudgetPolicy.window_start``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from services.tasks.domain import models as m
from services.tasks.domain import webhook_models as wm


class DuplicateKey(Exception):
    """An insert hit a unique constraint (idempotency key, user name); the argument
    names the duplicated value."""


class UsersTx(Protocol):
    """Users and their API keys (stored as SHA-256 hashes, ``domain.users``)."""

    async def count(self) -> int:
        """How many users exist."""
        ...

    async def insert(self, name: str, now: datetime) -> m.User:
        """Creates a user. Raises DuplicateKey when the name is taken."""
        ...

    async def insert_key(self, user_id: str, key_hash: str, prefix: str, now: datetime) -> None:
        """Stores a key's hash and the prefix shown to operators."""
        ...

    async def for_key_hash(self, key_hash: str) -> m.User | None:
        """The user of a live (unrevoked) key with this hash, or None."""
        ...

    async def existing(self, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` that name a user."""
        ...

    async def list_keys(self) -> list[m.UserKey]:
        """Every key with its user, by user name then creation time."""
        ...

    async def live_key_ids_with_prefix(self, prefix: str) -> list[str]:
        """Ids of live keys whose stored prefix starts with ``prefix`` (case-sensitive)."""
        ...

    async def live_key_ids_for_hash(self, key_hash: str) -> list[str]:
        """Ids of live keys with this hash."""
        ...

    async def revoke_key(self, key_id: str, now: datetime) -> None:
        """Marks the key revoked at ``now``."""
        ...


class LedgerTx(Protocol):
    """The token ledger (SPEC §8, §9): per user and window ``used`` and ``reserved``;
    one reservation per job, settled into ``used`` in its own window. Every change to a
    window is one conditional statement, so concurrent writers cannot overshoot."""

    async def reserve(self, user_id: str, window_start: int, tokens: int, limit: int) -> bool:
        """Adds ``tokens`` to the window's reservations if ``used + reserved + tokens <=
        limit``; False (nothing changed) otherwise."""
        ...

    async def open(self, job_id: str, user_id: str, reservation: m.ReservationInfo) -> None:
        """Records a new job's open reservation (its tokens already reserved in the
        window by :meth:`reserve`)."""
        ...

    async def open_many(self, jobs: list[tuple[str, str]], reservation: m.ReservationInfo) -> None:
        """:meth:`open` for several new jobs, (job id, user id) each, with the same
        reservation, in one statement."""
        ...

    async def window(self, user_id: str, window_start: int) -> tuple[int, int]:
        """(used, reserved) of the window, tokens; (0, 0) when it has no row."""
        ...

    async def settle(self, job_id: str, actual: int | None, now: datetime) -> int | None:
        """Replaces the job's open reservation with ``actual`` tokens (None: releases it
        in full). Returns the tokens that were reserved, or None when none was open."""
        ...

    async def charge_late(self, job_id: str, actual: int) -> bool:
        """Charges a completion that arrived after its reservation was released
        (cancelled, timed out); False when there is nothing to charge."""
        ...

    async def top_up(self, job_id: str, needed: int, limit: int) -> m.Admission:
        """Makes the job's open reservation cover ``needed`` tokens if its window has
        room (one conditional UPDATE); refused when it has not or none is open."""
        ...

    async def reserved_tokens(self, job_id: str) -> int:
        """The job's open reservation, tokens (0 when none is open)."""
        ...

    async def record_calls(self, job_id: str, calls: list[m.CallUsage], now: datetime) -> None:
        """Records the LLM calls behind a charge just made (``ledger check`` sums them)."""
        ...

    async def renew(self, job_id: str, window_start: int, tokens: int, limit: int) -> bool:
        """For a job being re-run: moves its settled run's charge to the run history and
        opens a fresh reservation of ``tokens`` in ``window_start`` if they fit under
        ``limit``. False (nothing changed) when they do not or the job has no settled
        reservation."""
        ...

    async def rows(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per user and window: (user, window, used, reserved, Σ charged, Σ open)."""
        ...

    async def job_mismatches(self) -> list[tuple[str, int, int]]:
        """Jobs whose charges differ from their recorded calls: (job, charged, recorded)."""
        ...


class JobsTx(Protocol):
    """Jobs and their states (``domain.lifecycle``)."""

    async def insert(
        self,
        *,
        user_id: str,
        text: str,
        request_id: str | None,
        idempotency_key: str | None,
        now: datetime,
        deadline: datetime,
    ) -> m.Job:
        """Creates a queued job (its reservation is the ledger's, ``LedgerTx.open``).
        Raises DuplicateKey when the user already has a job with ``idempotency_key``."""
        ...

    async def insert_many(
        self, jobs: list[m.NewJob], *, now: datetime, deadline: datetime
    ) -> list[m.Job]:
        """Creates queued jobs, in order, in one statement. Raises DuplicateKey when a
        user already has a job with one of the Idempotency-Keys (the transaction is then
        unusable on PostgreSQL: leave it)."""
        ...

    async def get(
        self, job_id: str, *, user_id: str | None = None, for_update: bool = False
    ) -> m.Job | None:
        """The job with its task when succeeded; None if absent, or (``user_id`` given)
        another user's or withdrawn. ``for_update`` locks its row (PostgreSQL)."""
        ...

    async def by_idempotency_key(self, user_id: str, key: str) -> m.Job | None:
        """The user's job created with this Idempotency-Key, or None."""
        ...

    async def states(self, job_ids: list[str]) -> dict[str, m.JobState]:
        """The states of the given jobs; unknown ids left out."""
        ...

    async def mark_dispatched(self, job_id: str, now: datetime) -> None:
        """Records the broker's confirm of a keyed job."""
        ...

    async def mark_dispatched_many(self, job_ids: list[str], now: datetime) -> None:
        """:meth:`mark_dispatched` for several jobs in one statement."""
        ...

    async def mark_running(self, job_id: str, now: datetime) -> m.Job | None:
        """Counts an attempt of an open job (state RUNNING); None if it is not open."""
        ...

    async def finish(
        self,
        job_id: str,
        state: m.JobState,
        error: m.JobError | None,
        now: datetime,
        *,
        from_states: tuple[str, ...],
    ) -> m.Job | None:
        """Moves a job in one of ``from_states`` to ``state`` and writes its webhook
        outbox rows; None (nothing changed) if it was in none. Use
        ``lifecycle.enter_terminal``, not this."""
        ...

    async def requeue(self, job_id: str, now: datetime, deadline: datetime) -> None:
        """Puts a failed job back to queued with a new deadline, its error cleared."""
        ...

    async def release_idempotency_key(self, job_id: str) -> None:
        """Frees a withdrawn job's key so the client's retry runs fresh (SPEC §5)."""
        ...

    async def lock_overdue(self, job_id: str, now: datetime) -> bool:
        """Whether the job is open and past its deadline, locking it if so (skipping a
        row another transaction holds, PostgreSQL)."""
        ...

    async def overdue(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of open jobs past their deadline, at most ``limit``."""
        ...

    async def undispatched_keyed(self, created_before: datetime, limit: int = 500) -> list[str]:
        """Ids of keyed jobs still queued without a recorded dispatch, created before
        ``created_before``, at most ``limit``."""
        ...

    async def page(self, query: m.JobQuery) -> tuple[list[m.Job], int]:
        """A page of jobs newest first (with each succeeded one's task) and how many
        match the filter."""
        ...


class TasksTx(Protocol):
    """Tasks (one per succeeded job) and their subtasks."""

    async def insert(self, job: m.Job, draft: m.TaskDraft, now: datetime) -> m.Task:
        """Creates the job's task and its subtasks."""
        ...

    async def get(self, user_id: str, task_id: str) -> m.Task | None:
        """The user's task, or None."""
        ...

    async def page(self, query: m.TaskQuery) -> tuple[list[m.Task], int]:
        """A page of the user's tasks in the query's order, and how many match."""
        ...


class WebhooksTx(Protocol):
    """Webhook endpoints (SPEC §5)."""

    async def count_endpoints(self, user_id: str) -> int:
        """How many endpoints the user has."""
        ...

    async def insert_endpoint(
        self, user_id: str, url: str, events: list[str], secret: str, now: datetime
    ) -> wm.WebhookEndpoint:
        """Creates an endpoint subscribed to ``events``."""
        ...

    async def list_endpoints(self, user_id: str) -> list[wm.WebhookEndpoint]:
        """The user's endpoints, oldest first."""
        ...

    async def delete_endpoint(self, user_id: str, endpoint_id: str) -> bool:
        """Deletes the user's endpoint and its pending events; False if not theirs."""
        ...

    async def get_target(self, endpoint_id: str) -> wm.WebhookTarget | None:
        """The endpoint with its signing secret, or None."""
        ...


class Tx(Protocol):
    """One transaction, by area. Read-only members, so an adapter may hold its own
    subtypes of them (a protocol's plain attributes would have to match exactly)."""

    @property
    def users(self) -> UsersTx: ...

    @property
    def ledger(self) -> LedgerTx: ...

    @property
    def jobs(self) -> JobsTx: ...

    @property
    def tasks(self) -> TasksTx: ...

    @property
    def webhooks(self) -> WebhooksTx: ...


class Store(Protocol):
    """Opens transactions. ``write()`` commits on a clean exit and rolls back when the
    block raises; ``read()`` never writes and never waits for writers (SQLite WAL)."""

    def write(self) -> AbstractAsyncContextManager[Tx]: ...

    def read(self) -> AbstractAsyncContextManager[Tx]: ...


class RateLimiter(Protocol):
    """A per-key request rate limit (SPEC §9: token bucket, continuous refill)."""

    async def acquire(self, key: str) -> float:
        """Takes one token; returns 0 when allowed, else seconds until one is available."""
        ...

    async def close(self) -> None:
        """Releases the limiter's connections."""
        ...
