"""The OpenAPI 3.1 document of the HTTP API: operations written out here,
schemas generated from the pydantic models the routes actually use, so the
two cannot drift apart in shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import problems, schemas, webhook_schemas
from gateway.problems import PROBLEM_CONTENT_TYPE
from gateway.sse import CONTENT_TYPE as SSE_CONTENT_TYPE

_REF = "#/components/schemas/{model}"

#: The Swagger UI files ``/docs`` loads (from the swagger-ui-py package), by media type.
DOCS_ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

_MODELS: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
    (schemas.CreateTaskBody, "validation"),
    (schemas.JobAccepted, "serialization"),
    (schemas.Job, "serialization"),
    (schemas.Task, "serialization"),
    (schemas.TaskList, "serialization"),
    (schemas.JobList, "serialization"),
    (schemas.Usage, "serialization"),
    (schemas.HealthStatus, "serialization"),
    (schemas.Problem, "serialization"),
    (webhook_schemas.CreateWebhookBody, "validation"),
    (webhook_schemas.WebhookCreated, "serialization"),
    (webhook_schemas.WebhookList, "serialization"),
    (webhook_schemas.WebhookEvent, "serialization"),
]


@dataclass(frozen=True)
class Reply:
    description: str
    model: type[BaseModel] | None = None
    #: None for a reply without a body.
    content_type: str | None = "application/json"
    headers: tuple[str, ...] = ()
    #: Further media types the same reply may have (a string body each).
    other_content_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    replies: dict[int, Reply]
    authenticated: bool = True
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    #: Schemas of path parameters that are not resource ids (uuid by default).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_headers: tuple[str, ...] = ()
    problems: tuple[int, ...] = field(default=())


_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "Where the job can be polled.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before the next attempt or poll.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Preference-Applied": {
        "description": "Echoes `wait=N` when a `Prefer: wait` was honoured.",
        "schema": {"type": "string"},
    },
    "X-Request-Id": {
        "description": "The request's id: the client's if valid, else a new UUID.",
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}},
    "Allow": {"description": "The methods this path accepts.", "schema": {"type": "string"}},
}

_REQUEST_HEADERS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A repeat with the same key and body returns the same job; "
        "the same key with another body is 422. 1 to 200 printable ASCII characters.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            # The server's rule: printable ASCII, not only spaces.
            "pattern": r"^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$",
        },
    },
    "Prefer": {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "`wait=N` (1 ≤ N; values over 30 wait 30 s): wait up to N seconds "
        "for the job to end: 201 with the job and its task if a task was created in time, "
        "200 with the job if it ended without one, else 202.",
        "schema": {"type": "string", "example": "wait=10"},
    },
    "Last-Event-ID": {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "Resume after this event id; earlier events are not sent again.",
        "schema": {"type": "string"},
    },
    "X-Request-Id": {
        "name": "X-Request-Id",
        "in": "header",
        "required": False,
        "description": "Correlates logs across services. A value of 8 to 128 of "
        "`[A-Za-z0-9._:-]` is kept and echoed; any other value is replaced by a new UUID "
        "(never refused).",
        "schema": {"type": "string"},
    },
}

_PROBLEM_TEXT = {
    400: "Validation failed (field named), malformed JSON or non-UTF-8 body, or input refused.",
    401: "Missing or invalid API key.",
    404: "No such resource for this user (malformed ids included).",
    405: "Method not allowed on this path.",
    413: "Body over 64 KiB.",
    415: "Body is not `application/json`.",
    409: "The request conflicts with the resource's state (e.g. cancelling a finished job).",
    422: "Idempotency key reused with a different body.",
    429: "Request rate or token budget exhausted; see Retry-After.",
    500: "Unexpected error; the detail is generic, quote the requestId.",
    503: "A dependency is down; see Retry-After.",
}
_PROBLEM_HEADERS = {401: ("WWW-Authenticate",), 405: ("Allow",), 429: ("Retry-After",)}
_PROBLEM_HEADERS[503] = ("Retry-After",)
_AUTH_PROBLEMS = (401, 429, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/v1/tasks",
        "createTask",
        "Submit a sentence; a job turns it into a task.",
        "tasks",
        {
            202: Reply(
                "Accepted: the job is queued.",
                schemas.JobAccepted,
                headers=("Location", "Retry-After"),
            ),
            201: Reply(
                "With `Prefer: wait`: the job succeeded in time; the body is the job "
                "with its task.",
                schemas.Job,
                headers=("Location", "Preference-Applied"),
            ),
            200: Reply(
                "With `Prefer: wait`: the job ended in time without a task (failed, "
                "for instance vague input); the body is the job with its error.",
                schemas.Job,
                headers=("Location", "Preference-Applied"),
            ),
        },
        body=schemas.CreateTaskBody,
        extra_headers=("Idempotency-Key", "Prefer"),
        problems=(400, 413, 415, 422),
    ),
    Operation(
        "get",
        "/api/v1/tasks",
        "listTasks",
        "List the caller's tasks, paginated.",
        "tasks",
        {200: Reply("A page of tasks.", schemas.TaskList)},
        query=schemas.ListTasksQuery,
        problems=(400,),
    ),
    Operation(
        "get",
        "/api/v1/tasks/{taskId}",
        "getTask",
        "One task.",
        "tasks",
        {200: Reply("The task.", schemas.Task)},
        path_params=("taskId",),
        problems=(404,),
    ),
    Operation(
        "get",
        "/api/v1/jobs",
        "listJobs",
        "List the caller's jobs, newest first, paginated.",
        "jobs",
        {200: Reply("A page of jobs.", schemas.JobList)},
        query=schemas.ListJobsQuery,
        problems=(400,),
    ),
    Operation(
        "get",
        "/api/v1/jobs/{jobId}",
        "getJob",
        "A job's state; the task once succeeded, the error once failed.",
        "jobs",
        {
            200: Reply(
                "The job; Retry-After while not terminal.", schemas.Job, headers=("Retry-After",)
            )
        },
        path_params=("jobId",),
        problems=(404,),
    ),
    Operation(
        "post",
        "/api/v1/jobs/{jobId}/cancel",
        "cancelJob",
        "Cancel a queued or running job: it never runs, or its LLM calls stop within "
        "about a second; status `cancelled`, no task, the reservation settled to the "
        "tokens actually spent. 409 when the job has already finished.",
        "jobs",
        {200: Reply("The cancelled job.", schemas.Job)},
        path_params=("jobId",),
        problems=(404, 409),
    ),
    Operation(
        "get",
        "/api/v1/jobs/{jobId}/events",
        "watchJob",
        "Follow a job: one server-sent event per state change, until terminal.",
        "jobs",
        {
            200: Reply(
                "`id: <sequence>`, `event: <status>`, `data: <Job JSON>` per state change.",
                content_type=SSE_CONTENT_TYPE,
            ),
            204: Reply(
                "Resumed after the terminal event: nothing more will come.", content_type=None
            ),
        },
        path_params=("jobId",),
        extra_headers=("Last-Event-ID",),
        problems=(404,),
    ),
    Operation(
        "get",
        "/api/v1/usage",
        "getUsage",
        "The caller's LLM token budget in the current window.",
        "usage",
        {200: Reply("The window's figures.", schemas.Usage)},
    ),
    Operation(
        "post",
        "/api/v1/webhooks",
        "createWebhook",
        "Register a webhook endpoint; the answer shows its signing secret once.",
        "webhooks",
        {
            201: Reply(
                "Registered; events are signed with `secret` (Standard Webhooks).",
                webhook_schemas.WebhookCreated,
                headers=("Location",),
            )
        },
        body=webhook_schemas.CreateWebhookBody,
        problems=(400, 413, 415),
    ),
    Operation(
        "get",
        "/api/v1/webhooks",
        "listWebhooks",
        "The caller's webhook endpoints (without secrets).",
        "webhooks",
        {200: Reply("The endpoints, oldest first.", webhook_schemas.WebhookList)},
    ),
    Operation(
        "delete",
        "/api/v1/webhooks/{webhookId}",
        "deleteWebhook",
        "Delete a webhook endpoint; its pending deliveries stop.",
        "webhooks",
        {204: Reply("Deleted.", content_type=None)},
        path_params=("webhookId",),
        problems=(404,),
    ),
    Operation(
        "get",
        "/healthz",
        "healthz",
        "Liveness.",
        "operations",
        {200: Reply("The process is up.", schemas.HealthStatus)},
        authenticated=False,
    ),
    Operation(
        "get",
        "/readyz",
        "readyz",
        "Readiness: Tasks and AI answer gRPC health SERVING.",
        "operations",
        {200: Reply("Ready.", schemas.HealthStatus)},
        authenticated=False,
        problems=(503,),
    ),
    Operation(
        "get",
        "/metrics",
        "metrics",
        "Prometheus metrics.",
        "operations",
        {200: Reply("Text exposition format 0.0.4.", content_type="text/plain")},
        authenticated=False,
    ),
    Operation(
        "get",
        "/openapi.json",
        "openapi",
        "This document.",
        "documentation",
        {200: Reply("OpenAPI 3.1.")},
        authenticated=False,
    ),
    Operation(
        "get",
        "/docs",
        "docs",
        "Swagger UI for this document: every operation, its body, and Try it out.",
        "documentation",
        {200: Reply("HTML.", content_type="text/html")},
        authenticated=False,
    ),
    Operation(
        "get",
        "/docs/static/{name}",
        "docsAsset",
        "A file of the Swagger UI page (served from the swagger-ui-py package; works offline).",
        "documentation",
        {
            200: Reply(
                "The file.",
                content_type="text/css",
                other_content_types=("text/javascript", "image/png"),
            )
        },
        authenticated=False,
        path_params=("name",),
        path_schemas={"name": {"type": "string", "enum": list(DOCS_ASSETS)}},
        problems=(404,),
    ),
)


#: One server-sent event, as OpenAPI 3.2 and tools validating streams read an
#: event-stream schema: each event's fields, the data being a Job in JSON.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {
            "type": "string",
            "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": _REF.format(model="Job")},
        },
    },
}


def _content(content_type: str, model: type[BaseModel] | None) -> dict[str, Any]:
    if content_type == SSE_CONTENT_TYPE:
        return {content_type: {"schema": _SSE_EVENT}}
    if model is not None:
        return {content_type: {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    if content_type == "application/json":
        return {content_type: {"schema": {"type": "object"}}}
    return {content_type: {"schema": {"type": "string"}}}


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    headers = {"X-Request-Id": _HEADERS["X-Request-Id"]}
    headers.update({name: _HEADERS[name] for name in reply.headers})
    out["headers"] = headers
    if reply.content_type is not None:
        out["content"] = _content(reply.content_type, reply.model)
        for other in reply.other_content_types:
            out["content"].update(_content(other, None))
    return out


def _problem(status: int) -> dict[str, Any]:
    return _reply(
        Reply(
            _PROBLEM_TEXT[status],
            schemas.Problem,
            content_type=PROBLEM_CONTENT_TYPE,
            headers=_PROBLEM_HEADERS.get(status, ()),
        )
    )


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    return [
        {"name": name, "in": "query", "required": False, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _operation(op: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": op.path_schemas.get(name, {"type": "string", "format": "uuid"}),
        }
        for name in op.path_params
    ]
    if op.query is not None:
        parameters.extend(_query_parameters(op.query))
    parameters.extend(_REQUEST_HEADERS[name] for name in op.extra_headers)
    parameters.append(_REQUEST_HEADERS["X-Request-Id"])
    statuses = set(op.problems) | {500}
    if op.authenticated:
        statuses |= set(_AUTH_PROBLEMS)
    responses: dict[str, Any] = {str(code): _reply(r) for code, r in sorted(op.replies.items())}
    responses.update({str(code): _problem(code) for code in sorted(statuses)})
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
        "security": [{"apiKey": []}] if op.authenticated else [],
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": _content("application/json", op.body),
        }
    return out


@cache
def document() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=_REF, by_alias=True)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taskmesh",
            "version": "1.0.0",
            "description": "One sentence in, a structured task out, asynchronously. Errors are "
            "RFC 9457 problem documents; problem `type` URIs: "
            + ", ".join(kind.uri for kind in problems.ALL_KINDS)
            + ".",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The API key."}
            },
        },
    }
