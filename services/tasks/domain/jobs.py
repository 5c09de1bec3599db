"""Jobs: accept (reserve + create + dispatch), start, complete (task + state +
ledger in one transaction), cancel, reopen, expire. Reads are in ``queries``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from services.tasks.domain import models as m
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.events import JobEvents
from services.tasks.domain.lifecycle import TerminalHook, enter_terminal
from services.tasks.domain.ports import DuplicateKey, Store, Tx
from taskmesh import errors, metrics
from taskmesh.logs import bind, job_id_var
from taskmesh.tracing import continued

log = logging.getLogger(__name__)


class _Item(Protocol):
    @property
    def job_id(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


ItemT = TypeVar("ItemT", bound=_Item)
ResultT = TypeVar("ResultT")

Outcome = m.TaskDraft | m.JobError
#: Failures a dead-letter replay may re-run (SPEC §7): the cause may have passed.
REOPENABLE = (m.ErrorType.RETRIES_EXHAUSTED, m.ErrorType.INTERNAL)
#: A keyed job queued this long without a recorded dispatch lost its request: a
#: dispatch is bounded by 5 s (transport.servicer.DISPATCH_TIMEOUT_S).
ABANDONED_DISPATCH_S = 60.0


class Dispatcher(Protocol):
    """Hands an accepted job to the AI service. Raises InvalidInput when the
    input is refused, Unavailable when it could not be queued."""

    async def dispatch(
        self, job: m.Job, reservation: m.ReservationInfo, timeout: float
    ) -> None: ...


@dataclass(frozen=True)
class Submission:
    """One submission to accept (``JobService.create_many``): the user's id, the text
    (stripped), its Idempotency-Key, the request id it arrived with, and the seconds its
    dispatch may take (what is left of its deadline, capped by TASKS_DISPATCH_TIMEOUT_S)."""

    user_id: str
    text: str
    idempotency_key: str | None = None
    request_id: str | None = None
    timeout: float = 5.0
    #: The submission's trace context (``taskmesh.tracing.trace_context``) when it arrived in
    #: a batch; empty: the current one.
    trace_context: Mapping[str, str] = field(default_factory=dict)


#: How a dispatch ended (``JobService._dispatch``): (the job, queued by this request) or
#: the AI service's refusal of the input.
Dispatched = tuple[m.Job, bool] | errors.InvalidInput


@dataclass(frozen=True)
class JobPolicy:
    """The rules a job runs under (settings: TOKEN_WINDOW_*, PARSE_TASK_TOKEN_ESTIMATE,
    JOB_TIMEOUT_S; SPEC §4, §9)."""

    budget: BudgetPolicy
    #: Seconds after creation at which an unfinished job is failed (TIMED_OUT).
    job_timeout_s: float


@dataclass(frozen=True)
class StartItem:
    """One StartJob: the job, and the tokens its reservation must cover (0: admit none)."""

    job_id: str
    tokens_needed: int
    #: The request id of the job's work (SPEC §12), for the log lines about this item.
    request_id: str | None = None


@dataclass(frozen=True)
class CompleteItem:
    """One CompleteJob: the job's outcome, the tokens its run spent (input + output) and
    the LLM calls behind them."""

    job_id: str
    outcome: Outcome
    actual_tokens: int
    calls: list[m.CallUsage]
    #: The request id of the job's work (SPEC §12), for the log lines about this item.
    request_id: str | None = None


@dataclass(frozen=True)
class _Started:
    job: m.Job
    admission: m.Admission
    #: Whether tokens were asked for (the admission is counted).
    admitted: bool


@dataclass(frozen=True)
class _Completed:
    job: m.Job
    applied: bool
    #: Tokens that were reserved, when this completion settled the reservation.
    reserved: int | None
    actual_tokens: int


class JobService:
    """The write side of jobs: each method is one or more transactions on ``store``
    (``ports.Store``); ``dispatcher`` hands accepted jobs to the AI service; ``events``
    is told of every state change this process commits; ``clock`` returns aware UTC
    datetimes; ``terminal_hooks`` run inside every terminal transition's transaction.
    Raises the ``taskmesh.errors`` named per method."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        policy: JobPolicy,
        events: JobEvents | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        terminal_hooks: list[TerminalHook] | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.policy = policy
        self.events = events or JobEvents()
        self.now = clock
        #: Run inside every terminal transition's transaction (lifecycle.enter_terminal).
        self.terminal_hooks: list[TerminalHook] = list(terminal_hooks or [])

    # --- accept -----------------------------------------------------------------------
    async def create(
        self,
        user_id: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        timeout: float = 5.0,
    ) -> m.Job:
        """Accepts one submission (:meth:`create_many` of one): the queued job, or the
        job its Idempotency-Key already made. Raises ResourceExhausted
        (TOKEN_BUDGET_EXHAUSTED, with Retry-After), InvalidInput (refused by the AI
        service), IdempotencyConflict, IdempotencyKeyInFlight, Unavailable (not queued
        in ``timeout`` seconds: withdrawn, never charged)."""
        (outcome,) = await self.create_many(
            [Submission(user_id, text, idempotency_key, request_id, timeout)]
        )
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def create_many(self, submissions: list[Submission]) -> list[m.Job | Exception]:
        """Accepts several submissions at once (CreateTasks): one entry per submission,
        in order, the job :meth:`create` would return for it or the error it would raise.

        Submissions without an Idempotency-Key are reserved and inserted in ONE write
        transaction (a refused reservation refuses only its own submission), handed to
        the AI service concurrently (each within its own ``timeout``; one not queued in
        time is withdrawn on its own, SPEC §8), and the refusals among them are recorded
        in one more transaction. Keyed submissions take the one-at-a-time path beside
        them: their answers (replay, conflict, in flight) depend on every earlier
        submission with the key, and their inserts may hit the unique key, which on
        PostgreSQL aborts the transaction it runs in."""
        outcomes: list[m.Job | Exception | None] = [None] * len(submissions)
        plain = [i for i, s in enumerate(submissions) if not s.idempotency_key]
        keyed = [i for i, s in enumerate(submissions) if s.idempotency_key]

        async def run_plain() -> None:
            for i, outcome in zip(
                plain, await self._create_plain([submissions[i] for i in plain]), strict=True
            ):
                outcomes[i] = outcome

        async def run_keyed(i: int) -> None:
            try:
                outcomes[i] = await self._create_keyed(submissions[i])
            except Exception as exc:  # noqa: BLE001 - that submission's answer
                outcomes[i] = exc

        if len(submissions) == 1:
            # The unary path: no task of its own, so the job id stays on the call's logs.
            await (run_keyed(0) if keyed else run_plain())
        else:
            await asyncio.gather(*([run_plain()] if plain else []), *(run_keyed(i) for i in keyed))
        return _answered(outcomes)

    def _reservation(self, now: datetime) -> m.ReservationInfo:
        budget = self.policy.budget
        return m.ReservationInfo(budget.estimate, budget.window_start(now.timestamp()))

    def _budget_exhausted(self, now: datetime) -> errors.ResourceExhausted:
        metrics.token_reservations.labels("denied").inc()
        return errors.ResourceExhausted(
            "Token budget exhausted for this window.",
            retry_after_s=self.policy.budget.seconds_to_window_end(now.timestamp()),
            reason=errors.TOKEN_BUDGET_EXHAUSTED,
        )

    async def _reserve(self, tx: Tx, user_id: str, reservation: m.ReservationInfo) -> bool:
        """Adds one job's estimate to the user's window if it fits (SPEC §9)."""
        return await tx.ledger.reserve(
            user_id, reservation.window_start, reservation.tokens, self.policy.budget.limit
        )

    async def _reserve_grouped(
        self, tx: Tx, submissions: list[Submission], reservation: m.ReservationInfo
    ) -> set[str]:
        """The users whose submissions all fit their window at once, each reserved with
        one statement for all of them (k submissions: k estimates). The others are left
        to one reservation per submission (a user with one submission, or whose window
        cannot take all of theirs).

        Equivalent to reserving one by one: every estimate is the same, a refused
        reservation changes nothing, and users' windows are apart, so when all k fit
        together each of the k would have fit in turn."""
        counts: dict[str, int] = {}
        for sub in submissions:
            counts[sub.user_id] = counts.get(sub.user_id, 0) + 1
        granted: set[str] = set()
        for user_id, count in counts.items():
            if count > 1 and await tx.ledger.reserve(
                user_id,
                reservation.window_start,
                reservation.tokens * count,
                self.policy.budget.limit,
            ):
                granted.add(user_id)
        return granted

    async def _create_plain(self, submissions: list[Submission]) -> list[m.Job | Exception]:
        """Unkeyed submissions: reservations, jobs and their reservation records in one
        transaction, then the dispatches concurrently (:meth:`create_many`)."""
        if not submissions:
            return []
        now = self.now()
        reservation = self._reservation(now)
        deadline = now + timedelta(seconds=self.policy.job_timeout_s)
        outcomes: list[m.Job | Exception | None] = []
        admitted: list[int] = []
        async with self.store.write() as tx:
            granted = await self._reserve_grouped(tx, submissions, reservation)
            for i, sub in enumerate(submissions):
                # In order, each its own conditional statement unless its user's whole
                # share fit at once: a burst of one user's submissions is admitted first
                # come, first served until the window is full.
                if sub.user_id in granted or await self._reserve(tx, sub.user_id, reservation):
                    admitted.append(i)
                    outcomes.append(None)  # the dispatch decides
                else:
                    outcomes.append(self._budget_exhausted(now))
            if not admitted:
                return _answered(outcomes)
            jobs = await tx.jobs.insert_many(
                [
                    m.NewJob(submissions[i].user_id, submissions[i].text, submissions[i].request_id)
                    for i in admitted
                ],
                now=now,
                deadline=deadline,
            )
            await tx.ledger.open_many([(job.id, job.user_id) for job in jobs], reservation)
        metrics.token_reservations.labels("reserved").inc(len(jobs))
        if len(jobs) == 1:
            # The unary path: from here every line of this request is about the new job
            # (SPEC §12); the call runs in a context of its own, so the id does not outlive it.
            job_id_var.set(jobs[0].id)
            dispatched: Sequence[Dispatched | BaseException]
            try:
                dispatched = [await self._dispatch(jobs[0], reservation, submissions[admitted[0]])]
            except Exception as exc:  # noqa: BLE001 - that submission's answer
                dispatched = [exc]
        else:
            dispatched = await asyncio.gather(
                *(
                    self._dispatch(job, reservation, submissions[i])
                    for i, job in zip(admitted, jobs, strict=True)
                ),
                return_exceptions=True,
            )
        await self._record_dispatches(
            [
                (job, d)
                for job, d in zip(jobs, dispatched, strict=True)
                if isinstance(d, tuple | errors.InvalidInput)
            ],
            keyed=False,
        )
        for i, d in zip(admitted, dispatched, strict=True):
            if not isinstance(d, tuple | Exception):
                raise d  # cancelled: every job of the call not queued was withdrawn
            outcomes[i] = d if isinstance(d, Exception) else d[0]
        return _answered(outcomes)

    async def _create_keyed(self, sub: Submission) -> m.Job:
        """One keyed submission (SPEC §5): its key's first outcome when it has one, else
        a new job, dispatched, its dispatch recorded so a repeat can be answered."""
        assert sub.idempotency_key is not None
        existing = await self._idempotent_replay(sub.user_id, sub.idempotency_key, sub.text)
        if existing is not None:
            return existing
        now = self.now()
        reservation = self._reservation(now)
        job: m.Job | None = None
        try:
            # One transaction: the reservation, the job and its reservation record.
            async with self.store.write() as tx:
                if not await self._reserve(tx, sub.user_id, reservation):
                    raise self._budget_exhausted(now)
                (job,) = await tx.jobs.insert_many(
                    [m.NewJob(sub.user_id, sub.text, sub.request_id, sub.idempotency_key)],
                    now=now,
                    deadline=now + timedelta(seconds=self.policy.job_timeout_s),
                )
                await tx.ledger.open_many([(job.id, job.user_id)], reservation)
        except DuplicateKey:
            job = None  # raised out of the transaction, so it rolled back: no reservation
        if job is None:
            # A concurrent request with the same key won; this one's transaction (and
            # reservation) was rolled back.
            replay = await self._idempotent_replay(sub.user_id, sub.idempotency_key, sub.text)
            if replay is None:
                raise errors.Unavailable("Please retry.")
            return replay
        metrics.token_reservations.labels("reserved").inc()
        job_id_var.set(job.id)
        outcome = await self._dispatch(job, reservation, sub)
        try:
            await self._record_dispatches([(job, outcome)], keyed=True)
        except BaseException:
            if not (isinstance(outcome, tuple) and outcome[1]):
                raise
            # Queued, but a repeat of its key could never be answered: withdrawn like a
            # dispatch not confirmed, so the client's error stands and its retry runs fresh.
            started = await self._withdraw(job.id)
            if started is None:
                raise
            return started
        if isinstance(outcome, Exception):
            raise outcome
        return outcome[0]

    async def _dispatch(
        self, job: m.Job, reservation: m.ReservationInfo, sub: Submission
    ) -> Dispatched:
        """Hands one job to the AI service within ``sub.timeout`` seconds: (job, True)
        when queued; (the job as a worker started it, False) when the dispatch was not
        confirmed but the job runs anyway; the AI service's InvalidInput when it refused
        the input (recorded by :meth:`_record_dispatches`). Raises what the dispatch
        raised (Unavailable, a timeout, cancellation) once the job is withdrawn."""
        # Without a trace context of its own the item runs in the call's: no generator
        # context manager per job for nothing.
        traced = continued(sub.trace_context) if sub.trace_context else nullcontext()
        with bind(request_id=sub.request_id, job_id=job.id), traced:
            try:
                await self.dispatcher.dispatch(job, reservation, sub.timeout)
            except errors.InvalidInput as exc:
                return exc
            except BaseException:
                # Not confirmed in time: the client hears 503, so the job must never
                # run, even if the broker confirms and delivers it later.
                started = await self._withdraw(job.id)
                if started is None:
                    raise
                # A worker already started it: it was accepted after all, and saying
                # 503 would invite a second job for the same intent.
                log.info(
                    "dispatch not confirmed, but a worker started the job",
                    extra={"job_id": job.id},
                )
                return started, False
        return job, True

    async def _record_dispatches(
        self, outcomes: list[tuple[m.Job, Dispatched]], *, keyed: bool
    ) -> None:
        """In one transaction: the refused jobs FAILED (INVALID_INPUT, never charged)
        and, for ``keyed`` jobs, the dispatch of the queued ones (only keyed jobs can be
        replayed: the others skip this write). Nothing is written when there is nothing
        to record."""
        refused = [(job, o) for job, o in outcomes if isinstance(o, errors.InvalidInput)]
        queued = [job for job, o in outcomes if isinstance(o, tuple) and o[1]] if keyed else []
        if not refused and not queued:
            return
        now = self.now()
        async with self.store.write() as tx:
            for job, exc in refused:
                error = m.JobError(m.ErrorType.INVALID_INPUT, exc.message)
                await self._terminal(tx, job.id, m.JobState.FAILED, error, None, now)
            if queued:
                await tx.jobs.mark_dispatched_many([job.id for job in queued], now)
        for job, _ in refused:
            self.events.changed(job.id)

    async def _idempotent_replay(self, user_id: str, key: str, text: str) -> m.Job | None:
        """The first outcome of a request with this key (SPEC §5, after the IETF
        Idempotency-Key draft), or None when the key is free.

        - another body with the key: IdempotencyConflict (422);
        - the first request still in flight (its dispatch not confirmed): FailedPrecondition
          (409), so a retry never races it into a second job;
        - the first request was refused: the same InvalidInput (400 stays 400);
        - otherwise the job it created (202 again)."""
        async with self.store.read() as tx:
            job = await tx.jobs.by_idempotency_key(user_id, key)
        if job is None:
            return None
        if job.natural_language != text:
            raise errors.IdempotencyConflict(
                "This Idempotency-Key was used with a different request body."
            )
        if job.error is not None and job.error.type is m.ErrorType.INVALID_INPUT:
            raise errors.InvalidInput(job.error.message)
        if job.state is m.JobState.QUEUED and job.dispatched_at is None:
            raise errors.IdempotencyKeyInFlight(
                "A request with this Idempotency-Key is still being processed; retry later."
            )
        return job

    async def _terminal(
        self,
        tx: Tx,
        job_id: str,
        state: m.JobState,
        error: m.JobError | None,
        actual_tokens: int | None,
        now: datetime,
    ) -> tuple[m.Job | None, int | None]:
        return await enter_terminal(
            tx, job_id, state, error, actual_tokens, now, self.terminal_hooks
        )

    async def _withdraw(self, job_id: str) -> m.Job | None:
        """Marks a queued job WITHDRAWN (reservation released, key freed). Returns
        None when withdrawn; the job when a worker had started it (not withdrawable).
        Raises what the store raises: the caller's 503 stands either way, and the
        sweeper ends a job left queued at its deadline."""
        async with self.store.write() as tx:
            withdrawn, _ = await self._terminal(
                tx, job_id, m.JobState.WITHDRAWN, None, None, self.now()
            )
            if withdrawn is not None:
                await tx.jobs.release_idempotency_key(job_id)
                log.info("job withdrawn: dispatch not confirmed in time", extra={"job_id": job_id})
                current = None
            else:
                current = await tx.jobs.get(job_id)
        self.events.changed(job_id)
        if current is not None and not current.state.visible:
            return None
        return current

    # --- worker callbacks --------------------------------------------------------------
    async def start(self, job_id: str) -> m.Job:
        """Counts an attempt of an open job (RUNNING), admitting no tokens; the job as it
        is when it must not run. Raises NotFound."""
        job, _ = await self.start_admitting(job_id, 0)
        return job

    async def start_admitting(self, job_id: str, tokens_needed: int) -> tuple[m.Job, m.Admission]:
        """Counts an attempt of an open job (RUNNING) and, in the same transaction, admits
        its first LLM calls: the reservation is topped up to ``tokens_needed`` (what earlier
        attempts spent + the first calls' bound) when it does not cover them and the
        reservation's window has room (SPEC §8). A job that must not run is returned as it
        is, not admitted. Raises NotFound."""
        async with self.store.write() as tx:
            started = await self._start_in(tx, StartItem(job_id, tokens_needed))
        return self._started(started)

    async def start_many(
        self, items: Sequence[StartItem]
    ) -> list[tuple[m.Job, m.Admission] | Exception]:
        """:meth:`start_admitting` for each item, in one write transaction (group commit):
        per item its result or the error its own call would raise, in the items' order.
        One item's failure leaves the others applied (:meth:`_batch`)."""
        results = await self._batch(items, self._start_in)
        return [r if isinstance(r, Exception) else self._started(r) for r in results]

    async def _start_in(self, tx: Tx, item: StartItem) -> _Started:
        job = await tx.jobs.mark_running(item.job_id, self.now())
        admitted = job is not None and item.tokens_needed > 0
        if job is None:
            admission = m.Admission(False, 0)
            job = await tx.jobs.get(item.job_id)
        elif admitted:
            admission = await tx.ledger.top_up(
                item.job_id, item.tokens_needed, self.policy.budget.limit
            )
        else:
            admission = m.Admission(True, await tx.ledger.reserved_tokens(item.job_id))
        if job is None:
            raise errors.NotFound("job not found")
        return _Started(job, admission, admitted)

    def _started(self, started: _Started) -> tuple[m.Job, m.Admission]:
        """What follows a committed start: the job's watchers told, the admission counted."""
        self.events.changed(started.job.id)
        if started.admitted:
            _count_admission(started.admission, "start")
        return started.job, started.admission

    async def _batch(
        self, items: Sequence[ItemT], step: Callable[[Tx, ItemT], Awaitable[ResultT]]
    ) -> list[ResultT | Exception]:
        """``step`` for each item, all in one write transaction, committed once; per item
        its result or the exception it raised, in the items' order.

        Per-item isolation without savepoints: an item whose step raises a domain error
        (NotFound) rolls the transaction back, keeps that error as its result, and the
        other items run again together; any other failure (a database error, which may be
        the transaction's rather than the item's) runs every remaining item in a
        transaction of its own. So one item's error changes nothing of the others, and a
        batch with k failing items costs k + 1 transactions. A step must leave its effects
        outside the transaction (events, metrics) to the caller, after the commit: a
        rolled-back step is run again."""
        results: list[ResultT | Exception | None] = [None] * len(items)
        pending = list(range(len(items)))
        while len(pending) > 1:
            failed: tuple[int, errors.TaskmeshError] | None = None
            try:
                async with self.store.write() as tx:
                    done: list[ResultT] = []
                    for index in pending:
                        item = items[index]
                        with bind(request_id=item.request_id, job_id=item.job_id):
                            try:
                                done.append(await step(tx, item))
                            except errors.TaskmeshError as exc:
                                failed = (index, exc)
                                raise
            except Exception:  # noqa: BLE001 - the failed item reports it (below)
                if failed is None:
                    log.info("a batch transaction failed; running its items one by one")
                    break
                results[failed[0]] = failed[1]
                pending.remove(failed[0])
                continue
            for index, result in zip(pending, done, strict=True):
                results[index] = result
            pending = []
        for index in pending:
            item = items[index]
            with bind(request_id=item.request_id, job_id=item.job_id):
                try:
                    async with self.store.write() as tx:
                        results[index] = await step(tx, item)
                except Exception as exc:  # noqa: BLE001 - the item's result is its error
                    results[index] = exc
        answered = [r for r in results if r is not None]
        assert len(answered) == len(items), "every item has its result"
        return answered

    async def reserve_tokens(self, job_id: str, tokens_needed: int) -> m.Admission:
        """Tops up a running job's reservation to cover ``tokens_needed`` (spent + in flight
        + the next call's bound) before a further LLM call, with the same conditional
        statement as :meth:`start`. Refused when the window has no room, or the job is not
        running (cancelled, withdrawn, terminal: its further calls are not made). Raises
        NotFound."""
        async with self.store.write() as tx:
            job = await tx.jobs.get(job_id, for_update=True)
            if job is None:
                raise errors.NotFound("job not found")
            if job.state is not m.JobState.RUNNING:
                admission = m.Admission(False, 0)
            else:
                admission = await tx.ledger.top_up(job_id, tokens_needed, self.policy.budget.limit)
        _count_admission(admission, "further")
        return admission

    async def complete(
        self,
        job_id: str,
        outcome: Outcome,
        actual_tokens: int,
        calls: list[m.CallUsage] | None = None,
    ) -> tuple[m.Job, bool]:
        """Records a job's outcome exactly once. A repeat (redelivery, retried
        callback) returns the first outcome and changes nothing; a completion
        arriving after the job timed out is charged but creates no task.

        ``calls``: the LLM calls behind ``actual_tokens``, recorded with the charge (and
        only then), so `taskmesh ledger check` can compare them per job. Raises NotFound."""
        item = CompleteItem(job_id, outcome, actual_tokens, list(calls or []))
        async with self.store.write() as tx:
            completed = await self._complete_in(tx, item)
        return self._completed(completed)

    async def complete_many(
        self, items: Sequence[CompleteItem]
    ) -> list[tuple[m.Job, bool] | Exception]:
        """:meth:`complete` for each item, in one write transaction (group commit): per
        item its result or the error its own call would raise, in the items' order. Two
        items for one job: the second is a repeat of the first. One item's failure leaves
        the others applied (:meth:`_batch`)."""
        results = await self._batch(items, self._complete_in)
        return [r if isinstance(r, Exception) else self._completed(r) for r in results]

    async def _complete_in(self, tx: Tx, item: CompleteItem) -> _Completed:
        job_id, outcome, actual_tokens, calls = (
            item.job_id,
            item.outcome,
            item.actual_tokens,
            item.calls,
        )
        now = self.now()
        state, error = (
            (m.JobState.SUCCEEDED, None)
            if isinstance(outcome, m.TaskDraft)
            else (m.JobState.FAILED, outcome)
        )
        # The transition first: it is the one conditional UPDATE that decides whether
        # this is the first outcome, so the usual case reads nothing beforehand.
        final, reserved = await self._terminal(tx, job_id, state, error, actual_tokens, now)
        if final is None:
            job = await tx.jobs.get(job_id, for_update=True)
            if job is None:
                raise errors.NotFound("job not found")
            if job.state.terminal:
                # Every LLM call is charged (SPEC §8): a run that ended after its job
                # timed out or was cancelled still spent tokens.
                timed_out = job.error is not None and job.error.type is m.ErrorType.TIMED_OUT
                if timed_out or job.state is m.JobState.CANCELLED:
                    if await tx.ledger.charge_late(job_id, actual_tokens):
                        await tx.ledger.record_calls(job_id, calls, now)
                return _Completed(job, False, None, actual_tokens)
            # Reopened (dead-letter replay) between the two statements; its row is
            # locked now (PostgreSQL) or the database is (SQLite), so this one applies.
            final, reserved = await self._terminal(tx, job_id, state, error, actual_tokens, now)
            assert final is not None
        task = None
        if isinstance(outcome, m.TaskDraft):
            task = await tx.tasks.insert(final, outcome, now)
        await tx.ledger.record_calls(job_id, calls, now)
        return _Completed(final.with_task(task), True, reserved, actual_tokens)

    def _completed(self, completed: _Completed) -> tuple[m.Job, bool]:
        """What follows a committed completion: watchers told, the reconciliation observed."""
        if completed.applied:
            self.events.changed(completed.job.id)
        if completed.reserved is not None:
            metrics.token_reconciliation_delta.observe(completed.actual_tokens - completed.reserved)
        return completed.job, completed.applied

    async def cancel(self, user_id: str | None, job_id: str) -> m.Job:
        """Cancels the user's queued or running job (status cancelled, no task);
        ``user_id=None``: any user's (the operator's ``taskmesh jobs cancel``).

        The reservation is released now; what the running attempt spent is charged when
        the worker reports it (CompleteJob after cancel, `charge_late`). Raises NotFound
        (no such job of this user) or FailedPrecondition (already terminal)."""
        now = self.now()
        async with self.store.write() as tx:
            job = await tx.jobs.get(job_id, user_id=user_id, for_update=True)
            if job is None or not job.state.visible:
                raise errors.NotFound("job not found")
            cancelled, _ = await self._terminal(tx, job_id, m.JobState.CANCELLED, None, None, now)
        if cancelled is None:
            raise errors.FailedPrecondition("The job has already finished.")
        self.events.changed(job_id)
        return cancelled

    async def reopen(self, job_id: str) -> m.Job:
        """Reopens a job failed RETRIES_EXHAUSTED or INTERNAL for a dead-letter replay
        (SPEC §7): status queued, a fresh reservation in the current window, a new
        deadline. Raises NotFound, FailedPrecondition (another state or failure: the
        message says which) or ResourceExhausted (the window has no room)."""
        now = self.now()
        budget = self.policy.budget
        async with self.store.write() as tx:
            job = await tx.jobs.get(job_id, for_update=True)
            if job is None:
                raise errors.NotFound("job not found")
            if (
                job.state is not m.JobState.FAILED
                or job.error is None
                or (job.error.type not in REOPENABLE)
            ):
                what = job.error.type.value if job.error is not None else job.state.value
                raise errors.FailedPrecondition(
                    f"job is {what}: only RETRIES_EXHAUSTED or INTERNAL failures are re-run"
                )
            window = budget.window_start(now.timestamp())
            deadline = now + timedelta(seconds=self.policy.job_timeout_s)
            if not await tx.ledger.renew(job_id, window, budget.estimate, budget.limit):
                raise errors.ResourceExhausted(
                    "token budget exhausted for this window",
                    retry_after_s=budget.seconds_to_window_end(now.timestamp()),
                    reason=errors.TOKEN_BUDGET_EXHAUSTED,
                )
            await tx.jobs.requeue(job_id, now, deadline)
            reopened = await tx.jobs.get(job_id)
        self.events.changed(job_id)
        assert reopened is not None
        return reopened

    async def expire_overdue(self) -> int:
        """Fails jobs past their deadline (TIMED_OUT, SPEC §8) and releases their tokens.
        Returns how many this call expired.

        Safe on every replica at once: each job is re-checked under its row lock in its
        own transaction (``JobsTx.lock_overdue``), so a job another sweeper or a completion is
        settling is skipped, and one that left the list since it was read (completed,
        or failed and reopened by a dead-letter replay with a new deadline) is left alone."""
        now = self.now()
        async with self.store.read() as tx:
            overdue = await tx.jobs.overdue(now)
        expired = 0
        error = m.JobError(m.ErrorType.TIMED_OUT, "The job did not finish in time.")
        for job_id in overdue:
            async with self.store.write() as tx:
                if not await tx.jobs.lock_overdue(job_id, now):
                    continue
                expired_job, _ = await self._terminal(
                    tx, job_id, m.JobState.FAILED, error, None, now
                )
            if expired_job is not None:
                expired += 1
                self.events.changed(job_id)
        return expired

    async def withdraw_abandoned(self, older_than_s: float = ABANDONED_DISPATCH_S) -> int:
        """Withdraws keyed jobs whose accepting request died before its dispatch was
        recorded (the Tasks replica killed mid-request): queued, ``dispatched_at`` unset,
        created more than ``older_than_s`` s ago (far beyond any dispatch's bound, so no
        live request still owns them). Returns how many were withdrawn.

        Without this, a repeat of their key would be answered 409 "still being
        processed" until the job timed out (SPEC §5). Withdrawn, the key is free and the
        client's retry runs fresh; a message the broker did confirm is skipped by the
        worker, as for any withdrawn job. Safe on several replicas at once: the
        withdrawal is a conditional update (lifecycle.enter_terminal)."""
        cutoff = self.now() - timedelta(seconds=older_than_s)
        async with self.store.read() as tx:
            abandoned = await tx.jobs.undispatched_keyed(cutoff)
        withdrawn = 0
        for job_id in abandoned:
            if await self._withdraw(job_id) is None:
                withdrawn += 1
        return withdrawn


def _answered(outcomes: list[m.Job | Exception | None]) -> list[m.Job | Exception]:
    """``outcomes`` once every entry is filled in (a None left is a bug here)."""
    answered = [outcome for outcome in outcomes if outcome is not None]
    assert len(answered) == len(outcomes), "a submission was left unanswered"
    return answered


def _count_admission(admission: m.Admission, stage: str) -> None:
    metrics.budget_admissions.labels(stage, "granted" if admission.granted else "refused").inc()
