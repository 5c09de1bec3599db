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
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import AMQPError

from taskmesh.settings import default

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BACKOFF_S = 5.0


async def connect_with_retry(
    url: str,
    setup: Callable[[AbstractRobustConnection], Awaitable[T]],
    stop: asyncio.Event | None = None,
    *,
    timeout_s: float = default("broker_connect_timeout_s"),
) -> tuple[AbstractRobustConnection, T]:
    delay = 0.5
    while True:
        connection: AbstractRobustConnection | None = None
        try:
            connection = await aio_pika.connect_robust(url, timeout=timeout_s)
            return connection, await setup(connection)
        except (TimeoutError, AMQPError, OSError, RuntimeError) as exc:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()
            if stop is not None and stop.is_set():
                raise
            log.warning("broker not ready (%s); retrying in %.1f s", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
