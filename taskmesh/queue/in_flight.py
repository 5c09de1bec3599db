"""The deliveries a consumer is handling: one task per delivery, drained with a grace period on
shutdown and cancelled when it is over (SPEC §8: whatever is unfinished stays unacked and is
redelivered). The job and webhook consumers both keep their work in one of these."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class InFlight:
    """A set of tasks, one per delivery, with an idle signal.

    ``what`` names the work in the log line of a task that ended with an exception (handlers
    are expected to settle their own failures; one that escapes is a defect, logged with its
    trace rather than lost as "exception never retrieved")."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Runs ``work`` in a task of its own, tracked until it ends; returns the task."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s handler crashed", self.what, exc_info=exc)

    async def drain(self, grace_s: float) -> bool:
        """Waits until no task is left; True if that happened within ``grace_s`` seconds
        (the tasks go on either way)."""
        if self._idle.is_set():
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
            return True
        except TimeoutError:
            return False

    async def cancel(self) -> None:
        """Cancels every task left and waits until each has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
