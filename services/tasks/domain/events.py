"""Wake-ups for watchers of a job (WatchJob, and so SSE and ``Prefer: wait``,
SPEC §5, §6).

A watcher takes a waiter, reads the job, and sleeps until the waiter fires or a
bounded poll interval passes. Waiters fire on:

- a state change committed by this process (``changed``, immediate);
- a change committed by any Tasks replica, relayed by a database feed
  (PostgreSQL LISTEN/NOTIFY, ``services/tasks/storage/job_feed.py``);
- a feed (re)connect: notifications sent while it was down are lost, so every
  watcher re-reads (``changed_all``).

The poll is the fallback where no feed exists (SQLite) or while it is down
(``FALLBACK_POLL_S``), and a slower safety net while it is up (``SAFETY_POLL_S``)."""

from __future__ import annotations

import asyncio

#: Re-read interval without a live feed: another process's change is seen within it.
FALLBACK_POLL_S = 1.0
#: Re-read interval while the feed is live: only bounds a lost notification's delay.
SAFETY_POLL_S = 5.0


class JobEvents:
    """In-process wake-ups, keyed by job id. Not thread-safe: call from the loop."""

    def __init__(
        self, fallback_poll_s: float = FALLBACK_POLL_S, safety_poll_s: float = SAFETY_POLL_S
    ) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._fallback_poll_s = fallback_poll_s
        self._safety_poll_s = safety_poll_s
        #: Set by a database feed while its LISTEN connection is up.
        self.feed_live = False

    @property
    def poll_s(self) -> float:
        """Seconds a watcher sleeps at most between two reads of its job."""
        return self._safety_poll_s if self.feed_live else self._fallback_poll_s

    def changed(self, job_id: str) -> None:
        """Wakes the watchers of ``job_id`` (a committed change, here or on another replica)."""
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    def changed_all(self) -> None:
        """Wakes every watcher: changes may have been missed (a feed reconnected)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def waiter(self, job_id: str) -> asyncio.Event:
        """Take this before reading the job, so no change between the read and
        the wait is missed."""
        return self._events.setdefault(job_id, asyncio.Event())

    async def wait(self, waiter: asyncio.Event, timeout: float | None = None) -> None:
        """Returns when ``waiter`` fires or after ``timeout`` s (default: ``poll_s``)."""
        try:
            await asyncio.wait_for(waiter.wait(), self.poll_s if timeout is None else timeout)
        except TimeoutError:
            pass
