"""Adaptive batching of concurrent calls into one (group commit).

A caller awaits :meth:`Coalescer.submit` with one item and gets its own result back. When no
batch is in flight the item is sent at once, alone, so a lone call pays no wait; items that
arrive while a batch is in flight queue up and leave together as soon as it returns. There is
no timer: under a burst each batch's fixed cost (a gRPC call, a transaction, a confirm wait) is
paid once per batch, the way Kafka producers with ``linger.ms=0`` and database group commit
behave.

With ``linger_s`` a batch that follows a batch of several items may wait a little for company
(Kafka's ``linger.ms``, but only under load): when the hop behind it answers faster, the callers
of the batch that just returned have not come back yet, and sending at once would cut the next
batch short and pay the fixed cost for fewer items (issue #12: a faster AI hop made the
gateway's and Tasks' batches smaller). A lone call, one arriving while nothing is in flight,
still leaves at once.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

#: ``send(items)`` returns one entry per item, in order: its result, or the exception that
#: item's caller should see. Raising fails every item of the batch with that exception.
Send = Callable[[list[ItemT]], Awaitable[Sequence["ResultT | BaseException"]]]

#: Seconds a lingering batch waits for one more item before it decides arrivals have stopped:
#: uvloop's timers count whole milliseconds (a shorter delay is one loop turn, too short for a
#: client in another process to answer).
LINGER_TICK_S = 0.001


class Coalescer(Generic[ItemT, ResultT]):
    """Gathers concurrent :meth:`submit` calls into batches for ``send``.

    ``max_batch``: items per batch at most (a burst larger than that leaves in several batches).
    ``max_in_flight``: batches sent at once; 1 is "flush when the previous batch returns".
    ``linger_s``: seconds at most a batch that follows a batch of n ≥ 2 items waits, while
    fewer than n items are queued, for the callers of the batch before it to come back. It
    leaves as soon as n are queued, or once a tick (``LINGER_TICK_S``) passed without a new
    item, or after ``linger_s``; 0 (the default): it leaves at once. A call made while nothing
    is in flight never waits; one made just after a batch of several returned waits a tick
    when no other follows it, ``linger_s`` at the very most.
    Each batch is sent from a task with an empty ``contextvars.Context``, so no caller's
    request id, job id or inbound deadline leaks into it: ``send`` carries what each item needs
    in the item itself.

    A caller cancelled before its item left (its own timeout) takes the item out of the
    queue; one cancelled after that leaves the batch to run and its result is dropped."""

    def __init__(
        self,
        send: Send[ItemT, ResultT],
        *,
        max_batch: int = 128,
        max_in_flight: int = 1,
        linger_s: float = 0.0,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        if linger_s < 0 or (linger_s and max_in_flight > 1):
            raise ValueError("linger_s must not be negative, and needs max_in_flight=1")
        self._send = send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._linger_s = linger_s
        # A lingering batch's wake-up, and the queue length that ends its wait.
        self._waiter: asyncio.Future[None] | None = None
        self._expected = 0
        self._queue: deque[tuple[ItemT, asyncio.Future[ResultT]]] = deque()
        self._senders: set[asyncio.Task[None]] = set()
        # Senders still willing to take items, counted without awaiting: a task's done
        # callback runs a loop turn after it has stopped taking, and an item queued in that
        # turn would be stranded.
        self._active = 0

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not yet sent)."""
        return len(self._queue)

    async def submit(self, item: ItemT) -> ResultT:
        """``item``'s result from its batch. Raises what ``send`` returned or raised for it."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._waiter is not None and len(self._queue) >= self._expected:
            _wake(self._waiter)
        if self._active < self._max_in_flight:
            self._active += 1
            sender = asyncio.get_running_loop().create_task(
                self._drain(), context=contextvars.Context()
            )
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await future

    async def aclose(self) -> None:
        """Waits for the batches in flight and the queue behind them to be sent."""
        while self._senders:
            await asyncio.gather(*self._senders, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                await self._run(batch)
                if self._linger_s and len(batch) > 1:
                    await self._linger(len(batch))
        finally:
            self._active -= 1

    async def _linger(self, expected: int) -> None:
        """Waits until ``expected`` items are queued (at most ``max_batch``), a tick passes
        without a new one, or ``linger_s`` is over."""
        loop = asyncio.get_running_loop()
        expected = min(expected, self._max_batch)
        give_up = loop.time() + self._linger_s
        while (seen := len(self._queue)) < expected:
            left = give_up - loop.time()
            if left <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiter, self._expected = waiter, expected
            timer = loop.call_later(min(LINGER_TICK_S, left), _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if len(self._queue) == seen:  # a whole tick without a new item: none is coming
                return

    def _take(self) -> list[tuple[ItemT, asyncio.Future[ResultT]]]:
        batch: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        while self._queue and len(batch) < self._max_batch:
            entry = self._queue.popleft()
            if not entry[1].done():  # its caller gave up before it left
                batch.append(entry)
        return batch

    async def _run(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"send returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except BaseException as exc:  # every item's caller hears it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
