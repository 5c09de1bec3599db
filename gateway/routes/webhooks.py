"""``/api/v1/webhooks``: the caller's webhook endpoints (SPEC §5).

Registration checks the URL (http/https, no credentials, a public address
unless WEBHOOK_ALLOW_PRIVATE) in the Tasks service, so gRPC callers get the
same rules. Events are delivered in the background, never on these routes."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.auth import authenticated
from gateway.body import json_object, validate
from gateway.clients import User
from gateway.ids import resource_id
from gateway.request_ids import request_id_of
from gateway.responses import json_model
from gateway.state import GatewayApp, state
from gateway.webhook_schemas import (
    CreateWebhookBody,
    WebhookList,
    created_from_proto,
    endpoint_from_proto,
)


@authenticated
async def create_webhook(request: Request, user: User) -> HTTPResponse:
    body = validate(CreateWebhookBody, json_object(request))
    response = await state(request).tasks.create_webhook(
        user.id, body.url, list(body.events or []), request_id=request_id_of(request)
    )
    created = created_from_proto(response)
    return json_model(created, 201, {"Location": f"/api/v1/webhooks/{created.id}"})


@authenticated
async def list_webhooks(request: Request, user: User) -> HTTPResponse:
    response = await state(request).tasks.list_webhooks(user.id, request_id=request_id_of(request))
    return json_model(WebhookList(webhooks=[endpoint_from_proto(e) for e in response.endpoints]))


@authenticated
async def delete_webhook(request: Request, user: User, webhook_id: str) -> HTTPResponse:
    await state(request).tasks.delete_webhook(
        user.id, resource_id(webhook_id, "Webhook"), request_id=request_id_of(request)
    )
    return HTTPResponse(status=204)


def register(app: GatewayApp) -> None:
    app.add_route(create_webhook, "/api/v1/webhooks", methods=["POST"], name="create_webhook")
    app.add_route(list_webhooks, "/api/v1/webhooks", methods=["GET"], name="list_webhooks")
    app.add_route(
        delete_webhook,
        "/api/v1/webhooks/<webhook_id:str>",
        methods=["DELETE"],
        name="delete_webhook",
    )
