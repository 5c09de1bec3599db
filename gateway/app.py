"""Assembles the Sanic application: config, middleware, error handling, routes."""

from __future__ import annotations

import uuid

from sanic import Sanic

from gateway import middleware, routes
from gateway.problems import ProblemErrorHandler
from gateway.signals import LeanSignalRouter
from gateway.state import GatewayApp, GatewayState

#: SPEC §5: bodies over 64 KiB are refused with 413.
REQUEST_MAX_SIZE = 64 * 1024


def build_app(state: GatewayState, shutdown_grace_s: float) -> GatewayApp:
    # Sanic keeps a process-wide registry of apps by name; tests run several.
    app: GatewayApp = Sanic(
        f"taskmesh-gateway-{uuid.uuid4().hex[:12]}",
        ctx=state,
        error_handler=ProblemErrorHandler(),
        signal_router=LeanSignalRouter(),
        # Logging belongs to the process (taskmesh.logs), settings to taskmesh.settings.
        configure_logging=False,
        env_prefix="",
    )
    app.config.update(
        {
            "MOTD": False,
            # TouchUp rewrites methods on the Sanic class itself, shared by every app.
            "TOUCHUP": False,
            "ACCESS_LOG": False,
            "NOISY_EXCEPTIONS": False,
            "REQUEST_MAX_SIZE": REQUEST_MAX_SIZE,
            "GRACEFUL_SHUTDOWN_TIMEOUT": shutdown_grace_s,
        }
    )
    middleware.install(app)
    routes.register(app)
    return app
