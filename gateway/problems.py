"""Every error the gateway answers is an RFC 9457 ``application/problem+json``
document: domain errors from downstream, edge validation, Sanic's own routing
and protocol errors, and anything unexpected (a generic 500 that never
carries a stack, a driver message or an address)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic.alias_generators import to_camel
from sanic import HTTPResponse, Request
from sanic import exceptions as sanic_errors
from sanic.handlers import ErrorHandler

from gateway.request_ids import request_id_of
from gateway.schemas import FieldError, Problem, dump
from taskmesh import error_table, errors

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = error_table.PROBLEM_BASE

#: A problem type: ``type`` URI, title and status (the domain errors' are in
#: ``taskmesh.error_table``; the ones below are the gateway's own, found at the edge).
Kind = error_table.ProblemType

VALIDATION = Kind("validation", "Request validation failed", 400)
INVALID_INPUT = error_table.INVALID_INPUT
MALFORMED = Kind("malformed-request", "Malformed request", 400)
UNAUTHENTICATED = error_table.UNAUTHENTICATED
NOT_FOUND = error_table.NOT_FOUND
METHOD_NOT_ALLOWED = Kind("method-not-allowed", "Method not allowed", 405)
CONFLICT = error_table.CONFLICT
PAYLOAD_TOO_LARGE = Kind("payload-too-large", "Payload too large", 413)
HEADERS_TOO_LARGE = Kind("headers-too-large", "Request header fields too large", 431)
UNSUPPORTED_MEDIA_TYPE = Kind("unsupported-media-type", "Unsupported media type", 415)
#: The client stopped sending its request (head or body) for REQUEST_TIMEOUT (gateway.http1).
REQUEST_TIMEOUT = Kind("request-timeout", "Request timeout", 408)
#: An ``Expect`` header other than ``100-continue`` (RFC 9110 §10.1.1).
EXPECTATION_FAILED = Kind("expectation-failed", "Expectation failed", 417)
IDEMPOTENCY_CONFLICT = error_table.IDEMPOTENCY_CONFLICT
RATE_LIMITED = error_table.RATE_LIMITED
INTERNAL = error_table.INTERNAL
UNAVAILABLE = error_table.UNAVAILABLE
#: Recorded (access log, metrics) when the client hung up; never reaches anyone.
CLIENT_CLOSED = Kind("client-closed-request", "Client closed request", 499)

#: Every kind a client may read, for the OpenAPI document.
ALL_KINDS: tuple[Kind, ...] = tuple(
    dict.fromkeys(
        (
            VALIDATION,
            *error_table.problem_types(),
            MALFORMED,
            METHOD_NOT_ALLOWED,
            PAYLOAD_TOO_LARGE,
            HEADERS_TOO_LARGE,
            UNSUPPORTED_MEDIA_TYPE,
            REQUEST_TIMEOUT,
            EXPECTATION_FAILED,
        )
    )
)

_INTERNAL_DETAIL = error_table.KINDS[-1].detail or ""
_WWW_AUTHENTICATE = 'Bearer realm="taskmesh"'
#: Sanic raises PayloadTooLarge for an oversized head as well as body; only its
#: message tells them apart, and a long URL is not a 64 KiB body.
_HEAD_TOO_LARGE = "header exceeds"


class ProblemError(Exception):
    """Raised by the gateway's own code for problems found at the edge."""

    def __init__(
        self,
        kind: Kind,
        detail: str,
        *,
        field_errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.field_errors = list(field_errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def retry_after(seconds: float) -> str:
    """Whole seconds, at least one: a zero would invite a tight retry loop."""
    return str(max(1, math.ceil(seconds)))


def problem_response(
    request: Request,
    kind: Kind,
    detail: str,
    *,
    field_errors: Sequence[FieldError] = (),
    suggestions: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    status: int | None = None,
    title: str | None = None,
) -> HTTPResponse:
    status = status or kind.status
    problem = Problem(
        type=kind.uri,
        title=title or kind.title,
        status=status,
        detail=detail,
        request_id=request_id_of(request),
        errors=list(field_errors) or None,
        suggestions=list(suggestions) or None,
        **dict(extra or {}),
    )
    return HTTPResponse(
        dump(problem),
        status=status,
        headers=dict(headers or {}),
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _field_name(path: str) -> str:
    """Downstream violations name proto fields; clients know the JSON names."""
    return ".".join(to_camel(part) for part in path.split("."))


def field_detail(errors: Sequence[FieldError], what: str) -> str:
    """``Invalid <what>: field: message; field: message.`` (the detail of a 400
    validation problem)."""
    listed = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return f"Invalid {what}: {listed}."


def _domain(request: Request, exc: errors.TaskmeshError) -> HTTPResponse:
    """The problem document of a domain error, read from its row of
    ``taskmesh.error_table``: type, title, status, detail and Retry-After."""
    kind = error_table.kind_of(exc)
    if kind.problem is INTERNAL:
        return _internal(request, exc)
    problem = kind.problem_for(exc)
    detail = kind.detail or exc.message or kind.fallback_detail
    field_errors = [
        FieldError(field=_field_name(v.field), message=v.description)
        for v in getattr(exc, "violations", ())
    ]
    if field_errors and kind.detail is None:
        # The same detail as the gateway's own validation, in the JSON field names.
        problem = VALIDATION
        detail = field_detail(field_errors, "request body")
    if problem is NOT_FOUND:
        detail = _not_found_detail(request)
    headers: dict[str, str] = {}
    if problem is UNAUTHENTICATED:
        headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
    wait = getattr(exc, "retry_after_s", None)
    if wait is None:
        wait = kind.retry_after_s
    if wait is not None:
        headers["Retry-After"] = retry_after(wait)
    return problem_response(
        request,
        problem,
        detail,
        field_errors=field_errors if problem is VALIDATION else (),
        headers=headers or None,
    )


def _not_found_detail(request: Request) -> str:
    """One wording per resource, whoever found it missing: a malformed id, an
    unknown one and another user's must read the same, or the answer would
    tell a caller which ids exist."""
    uri = request.route.uri if request.route is not None else ""
    if uri.startswith("/api/v1/jobs/"):
        return "Job not found."
    if uri.startswith("/api/v1/tasks/"):
        return "Task not found."
    return "Not found."


def _sanic(request: Request, exc: sanic_errors.SanicException) -> HTTPResponse:
    headers = {k: str(v) for k, v in (exc.headers or {}).items()}
    if isinstance(exc, sanic_errors.NotFound):
        return problem_response(request, NOT_FOUND, "No resource at this path.")
    if isinstance(exc, sanic_errors.MethodNotAllowed):
        return problem_response(
            request,
            METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed on this path.",
            headers=headers,
        )
    if isinstance(exc, sanic_errors.PayloadTooLarge) and _HEAD_TOO_LARGE in str(exc):
        limit_kib = request.app.config.REQUEST_MAX_HEADER_SIZE // 1024
        return problem_response(
            request,
            HEADERS_TOO_LARGE,
            f"The request line and headers exceed the {limit_kib} KiB limit.",
        )
    if isinstance(exc, sanic_errors.PayloadTooLarge):
        limit_kib = request.app.config.REQUEST_MAX_SIZE // 1024
        return problem_response(
            request, PAYLOAD_TOO_LARGE, f"The request exceeds the {limit_kib} KiB limit."
        )
    if isinstance(exc, sanic_errors.RequestTimeout):
        return problem_response(
            request,
            REQUEST_TIMEOUT,
            "The request was not received in time; send it again whole.",
            headers=headers,
        )
    if isinstance(exc, sanic_errors.ExpectationFailed):
        return problem_response(
            request, EXPECTATION_FAILED, "Only Expect: 100-continue is supported.", headers=headers
        )
    status = exc.status_code
    if status >= 500:
        if status == 503:
            headers["Retry-After"] = "1"
            return problem_response(
                request, UNAVAILABLE, "The request took too long; retry later.", headers=headers
            )
        return _internal(request, exc)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return problem_response(
        request, MALFORMED, f"{phrase}.", headers=headers, status=status, title=phrase
    )


def _internal(request: Request, exc: BaseException) -> HTTPResponse:
    route = request.route.uri if request.route is not None else request.path[:200]
    log.error("unhandled error answering %s %s", request.method, route, exc_info=exc)
    return problem_response(request, INTERNAL, _INTERNAL_DETAIL)


def to_problem(request: Request, exc: BaseException) -> HTTPResponse:
    if isinstance(exc, ProblemError):
        return problem_response(
            request,
            exc.kind,
            exc.detail,
            field_errors=exc.field_errors,
            headers=exc.headers,
            extra=exc.extra,
        )
    if isinstance(exc, errors.TaskmeshError):
        return _domain(request, exc)
    if isinstance(exc, sanic_errors.SanicException):
        return _sanic(request, exc)
    if isinstance(exc, sanic_errors.RequestCancelled):
        # The client went away mid-request: nothing failed here, and an error
        # with a stack per disconnect would let any client flood the logs.
        return problem_response(request, CLIENT_CLOSED, "The client closed the connection.")
    return _internal(request, exc)


class ProblemErrorHandler(ErrorHandler):
    """Sanic's last resort for every exception: a problem document."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        return to_problem(request, exception)
