"""The HTTP routes (SPEC §5), one module per resource."""

from __future__ import annotations

from gateway.routes import docs, jobs, ops, tasks, usage, webhooks
from gateway.state import GatewayApp


def register(app: GatewayApp) -> None:
    for module in (tasks, jobs, usage, webhooks, ops, docs):
        module.register(app)
