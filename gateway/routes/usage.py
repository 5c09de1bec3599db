"""``/api/v1/usage``: the caller's LLM token budget in the current window."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.auth import authenticated
from gateway.clients import User
from gateway.request_ids import request_id_of
from gateway.responses import json_model
from gateway.schemas import usage_from_proto
from gateway.state import GatewayApp, state


@authenticated
async def get_usage(request: Request, user: User) -> HTTPResponse:
    usage = await state(request).tasks.get_usage(user.id, request_id=request_id_of(request))
    return json_model(usage_from_proto(usage))


def register(app: GatewayApp) -> None:
    app.add_route(get_usage, "/api/v1/usage", methods=["GET"], name="get_usage")
