"""PostgreSQL LISTEN/NOTIFY feed of job state changes across Tasks replicas.

Every transaction that changes a job's state sends ``NOTIFY taskmesh_jobs,
'<job id>'`` (``storage.jobs``: ``pg_notify`` rides in the UPDATE's RETURNING,
so no extra round trip). PostgreSQL delivers it at commit to every listening
session, and only then (PostgreSQL docs, "NOTIFY"): a watcher woken by it reads
the committed state.

``JobFeed`` keeps one listening connection per Tasks process and wakes the
in-process ``JobEvents``. Notifications sent while the connection is down are
lost, so on every (re)connect all watchers re-read; meanwhile they poll at the
fallback interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import asyncpg
from sqlalchemy import make_url

from services.tasks.domain.events import JobEvents
from services.tasks.storage.jobs import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

#: The channel every job state change is announced on; the payload is the job id.
CHANNEL = NOTIFY_CHANNEL


def asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://…`` (SQLAlchemy) → ``postgresql://…`` (asyncpg)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobFeed:
    """Relays NOTIFYs on ``CHANNEL`` to ``events`` through one LISTEN connection.

    ``check_interval_s``: how often the connection is proven alive (a dropped TCP
    connection is otherwise noticed only when the kernel gives up); a failed check
    or a closed connection reconnects after ``retry_s`` (jittered, doubling up to
    ``max_retry_s``). Every remote call is bounded by ``timeout_s``."""

    def __init__(
        self,
        database_url: str,
        events: JobEvents,
        *,
        check_interval_s: float = 2.0,
        timeout_s: float = 5.0,
        retry_s: float = 0.2,
        max_retry_s: float = 2.0,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._events = events
        self._check_interval_s = check_interval_s
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._task: asyncio.Task[None] | None = None
        self._live = asyncio.Event()
        #: Connections made so far (the first one and every reconnect).
        self.connects = 0
        #: The PostgreSQL backend pid of the live LISTEN connection (None while down).
        self.backend_pid: int | None = None
        self._was_up = False

    async def start(self, wait_s: float | None = None) -> None:
        """Starts listening in the background; waits up to ``wait_s`` s for the
        first connection (None: does not wait). Watchers poll until it is up."""
        self._task = asyncio.create_task(self._run(), name="job-feed")
        if wait_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._live.wait(), wait_s)

    async def wait_live(self, timeout: float) -> None:
        """Returns once a LISTEN connection is up; raises TimeoutError otherwise."""
        await asyncio.wait_for(self._live.wait(), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        # asyncpg hands the NOTIFY payload over as text; its listener type says object.
        self._events.changed(str(payload))

    async def _run(self) -> None:
        delay = self._retry_s
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means "reconnect"
                if self._events.feed_live:
                    log.warning(
                        "job feed lost (%s); watchers poll until it is back", type(exc).__name__
                    )
                else:
                    log.debug("job feed not connected (%s)", type(exc).__name__)
            finally:
                self._set_live(False)
            delay = self._retry_s if self._was_up else min(delay * 2, self._max_retry_s)
            await asyncio.sleep(delay * (0.5 + random.random()))

    async def _listen(self) -> None:
        """One connection's life: returns never; raises when it fails or closes."""
        self._was_up = False
        conn = await asyncpg.connect(self._dsn, timeout=self._timeout_s)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c: lost.set())
            await asyncio.wait_for(conn.add_listener(CHANNEL, self._on_notify), self._timeout_s)
            self.connects += 1
            self.backend_pid = conn.get_server_pid()
            self._was_up = True
            self._set_live(True)
            if self.connects > 1:
                log.info("job feed reconnected")
            # Changes committed while nobody listened were not announced.
            self._events.changed_all()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_interval_s)
                if not lost.is_set():
                    await asyncio.wait_for(conn.execute("SELECT 1"), self._timeout_s)
            raise ConnectionError("listen connection closed")
        finally:
            self.backend_pid = None
            if not conn.is_closed():
                conn.terminate()

    def _set_live(self, live: bool) -> None:
        self._events.feed_live = live
        if live:
            self._live.set()
        else:
            self._live.clear()
