"""The OpenAPI 3.1 document of the HTTP API, written from the routes'
declarations (``gateway.routing``): operations as the handlers declare them,
schemas generated from the pydantic models those declarations name, so the
document cannot drift from what is served."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import problems, schemas, webhook_schemas
from gateway.problems import PROBLEM_CONTENT_TYPE
from gateway.routing import Operation, Reply
from gateway.sse import CONTENT_TYPE as SSE_CONTENT_TYPE

_REF = "#/components/schemas/{model}"

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
    "Accept-Encoding": {
        "description": "The content codings a request body may have: only `identity` "
        "(an uncompressed body), sent when a body came compressed.",
        "schema": {"type": "string"},
    },
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
    400: "Validation failed (field named), malformed JSON or non-UTF-8 body, a repeated "
    "header, or input refused.",
    401: "Missing or invalid API key.",
    404: "No such resource for this user (malformed ids included).",
    405: "Method not allowed on this path.",
    413: "Body over 64 KiB.",
    415: "Body is not `application/json`.",
    409: "The request conflicts with the resource's state (type conflict: e.g. cancelling a "
    "finished job; type webhook-limit-reached: the caller has the most webhook endpoints "
    "allowed, delete one first).",
    422: "Idempotency key reused with a different body.",
    429: "Request rate (type rate-limited) or token budget (type token-budget-exhausted) "
    "exhausted; see Retry-After.",
    500: "Unexpected error; the detail is generic, quote the requestId.",
    503: "A dependency is down; see Retry-After.",
}
_PROBLEM_HEADERS = {
    401: ("WWW-Authenticate",),
    405: ("Allow",),
    415: ("Accept-Encoding",),
    429: ("Retry-After",),
}
_PROBLEM_HEADERS[503] = ("Retry-After",)
#: Every authenticated route: a repeated Authorization header (400), a bad key, the rate.
_AUTH_PROBLEMS = (400, 401, 429, 503)

#: One server-sent event, as OpenAPI 3.2 and tools validating streams read an
#: event-stream schema: each event's fields, the data being a Job in JSON.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {
            "type": "string",
            "enum": list(get_args(schemas.JobStatus)),
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


def _models(
    operations: Sequence[Operation],
) -> list[tuple[type[BaseModel], Literal["validation", "serialization"]]]:
    """Every model the operations name (bodies as validated, replies as
    serialized), plus the problem document and the webhook event (sent, not
    served), each once."""
    models: dict[tuple[type[BaseModel], Literal["validation", "serialization"]], None] = {}
    for op in operations:
        if op.body is not None:
            models[(op.body, "validation")] = None
        for reply in op.replies.values():
            if reply.model is not None:
                models[(reply.model, "serialization")] = None
    models[(schemas.Problem, "serialization")] = None
    models[(webhook_schemas.WebhookEvent, "serialization")] = None
    return list(models)


def document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations`` (``gateway.routing.ROUTES``)."""
    _, top = models_json_schema(_models(operations), ref_template=_REF, by_alias=True)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
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
