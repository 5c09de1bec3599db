"""The gateway's signal router skips only lifecycle signals that have no handler."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
from sanic import Request, Sanic
from sanic.response import HTTPResponse, text

from gateway.signals import LeanSignalRouter


async def test_handled_lifecycle_signals_still_fire() -> None:
    app: Sanic[Any, Any] = Sanic(
        f"signals-{uuid.uuid4().hex[:12]}",
        configure_logging=False,
        signal_router=LeanSignalRouter(),
    )
    app.config.update({"MOTD": False, "TOUCHUP": False, "ACCESS_LOG": False})
    seen: list[str] = []

    @app.signal("http.lifecycle.request")
    async def on_request(request: Request) -> None:
        seen.append(request.path)

    async def hello(request: Request) -> HTTPResponse:
        return text("hi")

    app.add_route(hello, "/hello")
    sock = socket.create_server(("127.0.0.1", 0))
    server = await app.create_server(sock=sock, return_asyncio_server=True)
    assert server is not None
    try:
        await server.startup()
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{sock.getsockname()[1]}/hello")
        assert response.status_code == 200
        assert response.text == "hi"
        assert seen == ["/hello"]
        skipped = app.signal_router._skip  # type: ignore[attr-defined]
        assert "http.lifecycle.request" not in skipped
        assert "http.lifecycle.send" in skipped
    finally:
        server.close()
        await server.wait_closed()
        Sanic.unregister_app(app)
