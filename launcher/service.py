"""Runs one long-lived service in its own event loop until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop

from taskmesh import logs, tracing
from taskmesh.rpc import tls
from taskmesh.settings import ServiceSettings, load_settings

S = TypeVar("S", bound=ServiceSettings)


def run_service(
    name: str,
    service: Callable[[S, asyncio.Event, asyncio.Event], Awaitable[None]],
    kind: type[S],
) -> int:
    """Runs ``service`` with its settings (``kind`` from the environment: a bad value
    exits with status 2 and one line naming it), a stop event (set on SIGTERM/SIGINT) and a
    ready event (the service sets it once serving, see :func:`freeze_when_ready`); returns
    the exit status."""
    settings = load_settings(kind)
    logs.configure(name, settings.log_level, settings.log_format)
    try:
        # Every gRPC server and channel of this process follows these settings.
        tls.configure(
            tls.TlsConfig.from_files(
                settings.grpc_tls_cert,
                settings.grpc_tls_key,
                settings.grpc_tls_ca,
                settings.grpc_tls_server_name,
            )
        )
    except OSError as exc:
        print(f"taskmesh {name}: cannot read a GRPC_TLS_* file: {exc.strerror}", file=sys.stderr)
        return 1

    try:
        # Before any server, channel or connection exists: the instrumentations patch them.
        provider = tracing.configure(name)
    except ValueError as exc:
        print(f"taskmesh: invalid configuration: {exc}", file=sys.stderr)
        return 2

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ready = asyncio.Event()
        freezing = asyncio.create_task(freeze_when_ready(ready))
        try:
            await service(settings, stop, ready)
        finally:
            freezing.cancel()

    try:
        uvloop.run(_main())
    except OSError as exc:
        # A port in use or a socket error at start: one line, not a traceback.
        print(f"taskmesh {name}: {exc}", file=sys.stderr)
        return 1
    finally:
        if provider is not None:
            provider.shutdown()  # flushes the spans still batched
    return 0


async def freeze_when_ready(ready: asyncio.Event) -> None:
    """Once ``ready`` is set: collects the start-up garbage, then moves every object left
    (modules, settings, servers, channels, connections; they live as long as the process)
    out of the collector's generations (``gc.freeze``), so the collections that the requests'
    garbage triggers no longer walk them (issue 12)."""
    await ready.wait()
    gc.collect()
    gc.freeze()
