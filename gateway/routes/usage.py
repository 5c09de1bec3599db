"""``/api/v1/usage``: the caller's LLM token budget in the current window."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.auth import authenticated
from gateway.clients import User
from gateway.request_ids import request_id_of
from gateway.responses import json_model
from gateway.routing import Reply, route
from gateway.schemas import Usage, usage_from_proto
from gateway.state import state


@route(
    "get",
    "/api/v1/usage",
    "getUsage",
    "The caller's LLM token budget in the current window.",
    "usage",
    {200: Reply("The window's figures.", Usage)},
)
@authenticated
async def get_usage(request: Request, user: User) -> HTTPResponse:
    usage = await state(request).tasks.get_usage(user.id, request_id=request_id_of(request))
    return json_model(usage_from_proto(usage))
