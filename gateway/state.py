"""What route handlers share: the app's typed ``ctx``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

from sanic import Request, Sanic
from sanic.config import Config

from gateway.clients import DependencyHealth, TasksClient


@dataclass
class GatewayState:
    tasks: TasksClient
    health: DependencyHealth
    #: Upper bound of an event stream, seconds; a client resumes with Last-Event-ID.
    stream_timeout_s: float
    #: Set when the gateway begins to shut down, so long-lived streams end early.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


GatewayApp = Sanic[Config, GatewayState]


def state(request: Request) -> GatewayState:
    return cast(GatewayState, request.app.ctx)
