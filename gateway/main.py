"""The gateway process: serves the HTTP API until told to stop, then drains.

``run`` is what the CLI calls; ``start`` gives tests (and anything embedding
the gateway) the bound port and an explicit ``close``."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field

import grpc
from sanic import Sanic
from sanic.server.async_server import AsyncioServer

from gateway.app import build_app
from gateway.clients import DependencyHealth, TasksClient
from gateway.http1 import GatewayProtocol
from gateway.middleware import route_label
from gateway.state import GatewayApp, GatewayState
from taskmesh import tracing
from taskmesh.rpc.client import channel
from taskmesh.settings import GatewaySettings

log = logging.getLogger(__name__)

#: What this process reads from the environment (``launcher.service``).
SETTINGS = GatewaySettings

#: How often draining re-checks for connections that went idle, seconds.
_DRAIN_POLL_S = 0.05
#: An event stream outlives the job's own deadline only by this margin, seconds.
_STREAM_MARGIN_S = 60.0
#: Pending connections the kernel queues before refusing; bursts of clients are normal.
_BACKLOG = 1024


@dataclass
class RunningGateway:
    """A listening gateway. ``port`` is the bound one (useful when 0 was asked)."""

    app: GatewayApp
    host: str
    port: int
    _server: AsyncioServer
    _channels: tuple[grpc.aio.Channel, ...]
    _grace_s: float
    _closed: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        """Stops accepting, lets in-flight requests finish within the grace
        period, then aborts what is left and closes the gRPC channels."""
        if self._closed:
            return
        self._closed = True
        state = self.app.ctx
        state.stopping.set()
        try:
            await self._server.before_stop()
            if self._server.server is not None:
                self._server.server.close()
            await self._drain()
            await self._server.after_stop()
        finally:
            for ch in self._channels:
                await ch.close()
            Sanic.unregister_app(self.app)
            log.info("gateway stopped")

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._grace_s
        connections = self._server.connections
        while connections:
            for conn in list(connections):
                conn.close_if_idle()
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_DRAIN_POLL_S)
        if connections:
            log.warning(
                "aborting requests still running after the grace period",
                extra={"connections": len(connections)},
            )
            for conn in list(connections):
                conn.abort()


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket. Sanic's own binding reads port 0 as "use
    8000", so the gateway binds itself to honour an ephemeral port."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


async def start(settings: GatewaySettings) -> RunningGateway:
    """Opens the channels, builds the app and listens; returns once serving."""
    token = settings.require_internal_token()
    timeout_s = settings.grpc_call_timeout_s
    tasks_channel = channel(settings.tasks_grpc_addr, token=token, timeout_s=timeout_s)
    ai_channel = channel(settings.ai_grpc_addr, token=token, timeout_s=timeout_s)
    state = GatewayState(
        tasks=TasksClient(tasks_channel, timeout_s=timeout_s),
        health=DependencyHealth({"tasks": tasks_channel, "ai": ai_channel}),
        stream_timeout_s=settings.job_timeout_s + _STREAM_MARGIN_S,
    )
    app = build_app(state, settings.shutdown_grace_s)
    tracing.instrument_sanic(app, route_label)
    sock: socket.socket | None = None
    server: AsyncioServer | None = None
    try:
        sock = _listen(settings.gateway_host, settings.gateway_port)
        server = await app.create_server(
            sock=sock,
            return_asyncio_server=True,
            access_log=False,
            protocol=GatewayProtocol,
            # Accept nothing until the app's startup (router finalisation) is done.
            asyncio_server_kwargs={"start_serving": False},
        )
        assert server is not None and server.server is not None
        await server.startup()
        await server.before_start()
        await server.start_serving()
        await server.after_start()
    except BaseException:
        if server is not None and server.server is not None:
            server.server.close()
        if sock is not None:
            sock.close()
        for ch in (tasks_channel, ai_channel):
            await ch.close()
        Sanic.unregister_app(app)
        raise
    port = int(server.server.sockets[0].getsockname()[1])
    gateway = RunningGateway(
        app=app,
        host=settings.gateway_host,
        port=port,
        _server=server,
        _channels=(tasks_channel, ai_channel),
        _grace_s=settings.shutdown_grace_s,
    )
    log.info("gateway listening", extra={"url": gateway.url})
    return gateway


async def run(
    settings: GatewaySettings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Serves until ``stop`` is set; ``ready`` is set once listening."""
    gateway = await start(settings)
    try:
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await gateway.close()
