"""The HTTP routes (SPEC §5), one module per resource; each declares its
routes with their documentation (``gateway.routing``)."""

from __future__ import annotations

from gateway.routes import docs, jobs, ops, tasks, usage, webhooks
from gateway.routing import ROUTES
from gateway.state import GatewayApp

#: Importing a module declares its routes; listed so none is left out.
MODULES = (tasks, jobs, usage, webhooks, ops, docs)


def register(app: GatewayApp) -> None:
    """Serves every declared route on ``app``."""
    ROUTES.add_to(app)
