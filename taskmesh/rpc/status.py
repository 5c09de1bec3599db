"""Domain errors <-> gRPC status with rich details (google.rpc.*)."""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from taskmesh import errors

DOMAIN = "taskmesh"

_CODES: list[tuple[type[errors.TaskmeshError], grpc.StatusCode, int]] = [
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED),
    (errors.IdempotencyConflict, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE, code_pb2.UNAVAILABLE),
]


def _pack(message: Message) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def to_status(exc: errors.TaskmeshError) -> tuple[grpc.StatusCode, grpc.Status]:
    code, number = grpc.StatusCode.INTERNAL, code_pb2.INTERNAL
    for kind, grpc_code, num in _CODES:
        if isinstance(exc, kind):
            code, number = grpc_code, num
            break
    status = status_pb2.Status(code=number, message=exc.message)
    status.details.append(_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)))
    if isinstance(exc, errors.InvalidInput) and exc.violations:
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        seconds = math.ceil(retry_after)
        status.details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
        )
    return code, rpc_status.to_status(status)


def from_rpc_error(err: grpc.aio.AioRpcError) -> errors.TaskmeshError:
    """Rebuilds the domain error a downstream service raised, so a caller can
    handle it (and pass it on) as if it were local. Unknown or detail-less
    failures become ``Unavailable`` or a generic internal error; the
    downstream's message text is only kept for the codes whose messages the
    servers write for clients."""
    code = err.code()
    reason, violations, retry_after = "", [], None
    status = None
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]  # AioRpcError has the code() and trailing_metadata() it reads; the stub asks for grpc.Call
    except ValueError:
        status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = [
                    errors.FieldViolation(v.field, v.description) for v in bad.field_violations
                ]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info_r = error_details_pb2.RetryInfo()
                detail.Unpack(info_r)
                retry_after = float(info_r.retry_delay.seconds)
    message = err.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        exc: errors.TaskmeshError = errors.InvalidInput(message, violations)
    elif code == grpc.StatusCode.NOT_FOUND:
        exc = errors.NotFound(message)
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        exc = errors.Unauthenticated(message)
    elif code == grpc.StatusCode.FAILED_PRECONDITION:
        if reason == errors.IdempotencyConflict.reason:
            exc = errors.IdempotencyConflict(message)
        else:
            exc = errors.FailedPrecondition(message)
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        exc = errors.ResourceExhausted(message, retry_after or 1.0, reason or "RESOURCE_EXHAUSTED")
    elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        exc = errors.Unavailable(retry_after_s=retry_after or 1.0)
    else:
        exc = errors.TaskmeshError("Internal error.")
    if reason and code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        exc.reason = reason
    return exc
