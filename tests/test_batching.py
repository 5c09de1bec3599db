"""taskmesh.batching.Coalescer: a lone call leaves alone at once, calls made while a batch is
in flight leave together when it returns, and each caller gets its own result or error."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from taskmesh.batching import Coalescer

pytestmark = pytest.mark.timeout(10)

request_id = contextvars.ContextVar("request_id", default=None)


class GatedSend:
    """A ``send`` that records each batch and waits for the test to open a gate per batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.contexts: list[object] = []
        self.gates: list[asyncio.Event] = []
        self.arrived = asyncio.Condition()

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        gate = asyncio.Event()
        async with self.arrived:
            self.batches.append(list(items))
            self.contexts.append(request_id.get())
            self.gates.append(gate)
            self.arrived.notify_all()
        await gate.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    async def wait_batches(self, n: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.batches) >= n)


async def test_lone_call_is_sent_at_once_and_burst_behind_it_leaves_as_one_batch() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send)
    first = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    assert send.batches == [[0]]  # nothing held back for company

    rest = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 4, 6)]
    send.gates[0].set()
    assert await first == 0
    await send.wait_batches(2)
    assert send.batches[1] == [2, 4, 6]
    send.gates[1].set()
    assert await asyncio.gather(*rest) == [20, 40, 60]


async def test_each_caller_gets_its_own_error_and_the_others_their_results() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send)
    blocker = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    calls = [asyncio.ensure_future(coalescer.submit(i)) for i in (1, 2, 3)]
    send.gates[0].set()
    await send.wait_batches(2)
    send.gates[1].set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert await blocker == 0
    assert [str(o) if isinstance(o, BaseException) else o for o in outcomes] == [
        "odd 1",
        20,
        "odd 3",
    ]


async def test_a_failed_send_fails_every_item_of_its_batch_only() -> None:
    calls = 0

    async def send(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return items

    coalescer: Coalescer[int, int] = Coalescer(send)
    with pytest.raises(ConnectionError):
        await coalescer.submit(1)
    assert await coalescer.submit(2) == 2


async def test_max_batch_splits_a_burst() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send, max_batch=2)
    first = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    rest = [asyncio.ensure_future(coalescer.submit(i)) for i in (2, 4, 6, 8, 10)]
    send.gates[0].set()
    for n in (2, 3, 4):
        await send.wait_batches(n)
        send.gates[n - 1].set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20, 40, 60, 80, 100]
    assert send.batches[1:] == [[2, 4], [6, 8], [10]]


async def test_a_caller_that_gives_up_before_its_batch_leaves_is_not_sent() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send)
    first = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(coalescer.submit(2), timeout=0.01)
    kept = asyncio.ensure_future(coalescer.submit(4))
    send.gates[0].set()
    await send.wait_batches(2)
    send.gates[1].set()
    assert (await first, await kept) == (0, 40)
    assert send.batches[1] == [4]


async def test_batches_do_not_run_in_a_callers_context() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send)
    request_id.set("req-of-the-first-caller")
    call = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    send.gates[0].set()
    await call
    assert send.contexts == [None]


async def test_max_in_flight_lets_that_many_batches_go_at_once() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send, max_in_flight=2)
    a = asyncio.ensure_future(coalescer.submit(0))
    await send.wait_batches(1)
    b = asyncio.ensure_future(coalescer.submit(2))  # one batch in flight: a second may go
    await send.wait_batches(2)
    assert send.batches == [[0], [2]]
    for gate in send.gates:
        gate.set()
    assert (await a, await b) == (0, 20)
    await coalescer.aclose()


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        Coalescer(GatedSend(), max_batch=0)


async def test_a_batch_after_a_batch_of_several_waits_for_as_many_callers() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send, linger_s=60)
    first = [asyncio.ensure_future(coalescer.submit(i)) for i in (0, 2)]
    await send.wait_batches(1)
    assert send.batches == [[0, 2]]  # nothing was in flight: no wait
    third = asyncio.ensure_future(coalescer.submit(4))
    send.gates[0].set()
    # Once its callers hear their results the batch has returned; without the wait the
    # item queued meanwhile would already have left alone.
    assert await asyncio.gather(*first) == [0, 20]
    fourth = asyncio.ensure_future(coalescer.submit(6))
    await send.wait_batches(2)
    assert send.batches[1] == [4, 6]  # as many as the batch before: it left at once
    send.gates[1].set()
    assert (await third, await fourth) == (40, 60)


async def test_a_lingering_batch_leaves_once_no_caller_comes_back() -> None:
    send = GatedSend()
    coalescer: Coalescer[int, int] = Coalescer(send, linger_s=60)
    first = [asyncio.ensure_future(coalescer.submit(i)) for i in (0, 2)]
    await send.wait_batches(1)
    alone = asyncio.ensure_future(coalescer.submit(4))
    send.gates[0].set()
    await send.wait_batches(2)  # a tick without a new item, far from the 60 s
    assert send.batches[1] == [4]
    send.gates[1].set()
    assert await alone == 40
    assert await asyncio.gather(*first) == [0, 20]


def test_linger_needs_one_batch_in_flight() -> None:
    with pytest.raises(ValueError):
        Coalescer(GatedSend(), max_in_flight=2, linger_s=0.01)
    with pytest.raises(ValueError):
        Coalescer(GatedSend(), linger_s=-1)
