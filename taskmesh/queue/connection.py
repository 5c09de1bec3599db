"""Connecting to the broker at start, shared by the publisher and the worker.

After start, robust connections reconnect by themselves. At start the broker
may be down, still booting, or answer a declare or consume with a transient
error (a quorum queue whose leader is not elected yet): the whole setup is
retried with backoff until it succeeds or the process is asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aio_pika
import stamina
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from taskmesh.settings import default

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Backoff between setup attempts, seconds: doubling from 0.5 to MAX_BACKOFF_S, so a
#: broker that comes back is used within seconds (SPEC §8).
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0
_TRANSIENT = (TimeoutError, AMQPError, OSError, RuntimeError)


async def connect_with_retry(
    url: str,
    setup: Callable[[AbstractRobustConnection], Awaitable[T]],
    stop: asyncio.Event | None = None,
    *,
    timeout_s: float = default("broker_connect_timeout_s"),
) -> tuple[AbstractRobustConnection, T]:
    """A robust connection to ``url`` and what ``setup`` made on it, retried on broker
    errors without limit (``timeout_s`` per connection attempt, seconds); once ``stop``
    is set, the next failure is raised."""

    def retry(exc: Exception) -> bool:
        return isinstance(exc, _TRANSIENT) and not (stop is not None and stop.is_set())

    async for attempt in stamina.retry_context(
        on=retry,
        attempts=None,
        timeout=None,
        wait_initial=FIRST_BACKOFF_S,
        wait_max=MAX_BACKOFF_S,
        wait_jitter=FIRST_BACKOFF_S,
    ):
        with attempt:
            connection: AbstractRobustConnection | None = None
            try:
                connection = await aio_pika.connect_robust(url, timeout=timeout_s)
                return connection, await setup(connection)
            except _TRANSIENT as exc:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                log.warning("broker not ready (%s); retrying", type(exc).__name__)
                raise
    raise AssertionError("unreachable: attempts are unlimited")


async def cancel_consumer(queue: AbstractQueue, consumer_tag: str, timeout_s: float) -> bool:
    """Sends AMQP ``basic.cancel`` for ``consumer_tag`` and waits for ``cancel-ok`` at most
    ``timeout_s`` seconds, the wait for a usable channel included; True if the broker
    confirmed, False at once if the channel is closed. A robust channel whose broker is away
    waits for the reconnection without end, which held a stopping worker until its grace
    period ran out; a broker that is away has dropped the consumer already, so there is
    nothing left to cancel."""
    if queue.channel.is_closed:
        # The broker went away with the channel: no reconnection to wait for.
        log.info("consumer not cancelled: its channel is closed")
        return False
    try:
        async with asyncio.timeout(timeout_s):
            await queue.cancel(consumer_tag)
    except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
        log.warning("could not cancel the consumer (%s)", type(exc).__name__)
        return False
    return True
