"""Adaptive batching of concurrent calls into one (group commit).

A caller awaits :meth:`Coalescer.submit` with one item and gets its own result back. When no
batch is in flight the item is sent at once, alone, so a lone call pays no wait; items that
arrive while a batch is in flight queue up and leave together as soon as it returns. There is
no timer: under a burst each batch's fixed cost (a gRPC call, a transaction, a confirm wait) is
paid once per batch, the way Kafka producers with ``linger.ms=0`` and database group commit
behave.
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


class Coalescer(Generic[ItemT, ResultT]):
    """Gathers concurrent :meth:`submit` calls into batches for ``send``.

    ``max_batch``: items per batch at most (a burst larger than that leaves in several batches).
    ``max_in_flight``: batches sent at once; 1 is "flush when the previous batch returns".
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
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._send = send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
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
        finally:
            self._active -= 1

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
