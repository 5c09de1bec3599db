"""``/api/v1/webhooks``: the caller's webhook endpoints (SPEC §5).

Registration checks the URL (http/https, no credentials, a public address
unless WEBHOOK_ALLOW_PRIVATE) in the Tasks service, so gRPC callers get the
same rules. Events are delivered in the background, never on these routes."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from gateway.auth import authenticated
from gateway.body import json_object, query, validate
from gateway.clients import User
from gateway.ids import resource_id
from gateway.request_ids import request_id_of
from gateway.responses import json_model
from gateway.routing import Reply, route
from gateway.state import state
from gateway.webhook_schemas import (
    CreateWebhookBody,
    ListWebhooksQuery,
    WebhookCreated,
    WebhookList,
    created_from_proto,
    endpoint_from_proto,
)


@route(
    "post",
    "/api/v1/webhooks",
    "createWebhook",
    "Register a webhook endpoint; the answer shows its signing secret once.",
    "webhooks",
    {
        201: Reply(
            "Registered; events are signed with `secret` (Standard Webhooks).",
            WebhookCreated,
            headers=("Location",),
        )
    },
    body=CreateWebhookBody,
    # 409: the caller's endpoints are at the limit (webhook-limit-reached).
    problems=(400, 409, 413, 415),
)
@authenticated
async def create_webhook(request: Request, user: User) -> HTTPResponse:
    body = validate(CreateWebhookBody, json_object(request))
    response = await state(request).tasks.create_webhook(
        user.id, body.url, list(body.events or []), request_id=request_id_of(request)
    )
    created = created_from_proto(response)
    return json_model(created, 201, {"Location": f"/api/v1/webhooks/{created.id}"})


@route(
    "get",
    "/api/v1/webhooks",
    "listWebhooks",
    "The caller's webhook endpoints (without secrets).",
    "webhooks",
    {200: Reply("The endpoints, oldest first.", WebhookList)},
    query=ListWebhooksQuery,
    problems=(400,),
)
@authenticated
async def list_webhooks(request: Request, user: User) -> HTTPResponse:
    query(request, ListWebhooksQuery)
    response = await state(request).tasks.list_webhooks(user.id, request_id=request_id_of(request))
    return json_model(WebhookList(webhooks=[endpoint_from_proto(e) for e in response.endpoints]))


@route(
    "delete",
    "/api/v1/webhooks/{webhookId}",
    "deleteWebhook",
    "Delete a webhook endpoint; its pending deliveries stop.",
    "webhooks",
    {204: Reply("Deleted.", content_type=None)},
    problems=(404,),
)
@authenticated
async def delete_webhook(request: Request, user: User, webhook_id: str) -> HTTPResponse:
    await state(request).tasks.delete_webhook(
        user.id, resource_id(webhook_id, "Webhook"), request_id=request_id_of(request)
    )
    return HTTPResponse(status=204)
