"""The in-flight tracker both consumers keep their deliveries in (taskmesh/queue/in_flight.py):
counted while running, idle when none is left, drain bounded by its grace, cancel leaves none,
a crash is logged rather than lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from taskmesh.queue.in_flight import InFlight


async def _until(gate: asyncio.Event, done: list[int], n: int) -> None:
    await gate.wait()
    done.append(n)


async def test_drain_waits_for_every_task_then_reports_idle() -> None:
    tracker = InFlight("job")
    gate = asyncio.Event()
    done: list[int] = []
    for n in range(3):
        tracker.spawn(_until(gate, done, n))
    assert len(tracker) == 3
    assert not await tracker.drain(0.01)
    gate.set()
    assert await tracker.drain(30)
    assert sorted(done) == [0, 1, 2] and len(tracker) == 0
    assert await tracker.drain(0)  # idle: nothing to wait for


async def test_drain_gives_up_after_its_grace_and_cancel_ends_the_rest() -> None:
    tracker = InFlight("job")
    gate = asyncio.Event()
    done: list[int] = []
    task = tracker.spawn(_until(gate, done, 1))
    assert not await tracker.drain(0.05)
    assert not task.done(), "a drain that gives up leaves the work running"
    await tracker.cancel()
    assert task.cancelled() and len(tracker) == 0 and done == []
    assert await tracker.drain(0)


async def test_spawn_after_idle_is_tracked_again() -> None:
    tracker = InFlight("job")
    gate = asyncio.Event()
    done: list[int] = []
    gate.set()
    await tracker.spawn(_until(gate, done, 1))
    assert await tracker.drain(0)
    held = asyncio.Event()
    tracker.spawn(_until(held, done, 2))
    assert not await tracker.drain(0.01)
    held.set()
    assert await tracker.drain(30) and done == [1, 2]


async def test_a_crashed_handler_is_logged_with_its_trace(caplog: pytest.LogCaptureFixture) -> None:
    async def crash() -> None:
        raise RuntimeError("defect")

    tracker = InFlight("webhook")
    task = tracker.spawn(crash())
    assert await tracker.drain(30)
    assert isinstance(task.exception(), RuntimeError)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "webhook handler crashed" and record.exc_info is not None
