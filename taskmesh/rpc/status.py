"""Domain errors <-> gRPC status with rich details (google.rpc.*), both
directions read from ``taskmesh.error_table``."""

from __future__ import annotations

import math

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from taskmesh import errors
from taskmesh.error_table import DOMAIN, Received, kind_for, kind_of

__all__ = ["DOMAIN", "from_rpc_error", "from_status", "item_status", "status_of", "to_status"]

#: What a call that failed unexpectedly says (the server's ObserveInterceptor): no detail
#: of the failure reaches the caller.
INTERNAL_MESSAGE = "internal error"


def _pack(message: Message) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def to_status(exc: errors.TaskmeshError) -> tuple[grpc.StatusCode, grpc.Status]:
    """The status a server aborts with for ``exc`` (:func:`status_of`). Returns (code,
    status for ``context.abort_with_status``)."""
    code = kind_of(exc).code
    return code, rpc_status.to_status(status_of(exc))


def status_of(exc: errors.TaskmeshError) -> status_pb2.Status:
    """``exc`` as a ``google.rpc.Status``: its row's code, the error's message, and
    details: ``ErrorInfo`` (reason, domain ``taskmesh``), a ``BadRequest`` for field
    violations, a ``RetryInfo`` (whole seconds, rounded up) when the error says when to
    come back. A batch call answers each failed item with it (CreateTasks)."""
    code = kind_of(exc).code
    # google.rpc.Code numbers are grpc's own (grpc.StatusCode values are (number, name)).
    status = status_pb2.Status(code=code.value[0], message=exc.message)
    status.details.append(_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)))
    violations = getattr(exc, "violations", None)
    if violations:
        status.details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in violations
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
    return status


def _received(err: grpc.aio.AioRpcError) -> Received:
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]  # an AioRpcError is a Call
    except ValueError:
        status = None  # details that contradict the code or message: read the code alone
    return _read(err.details() or "", status)


def _read(message: str, status: status_pb2.Status | None) -> Received:
    reason, violations, retry_after = "", [], None
    for detail in status.details if status is not None else ():
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
            delay = error_details_pb2.RetryInfo()
            detail.Unpack(delay)
            retry_after = float(delay.retry_delay.seconds)
    return Received(message, reason, violations, retry_after)


def from_rpc_error(err: grpc.aio.AioRpcError) -> errors.TaskmeshError:
    """Rebuilds the domain error a downstream service raised, so a caller can
    handle it (and pass it on) as if it were local: the row of its
    ``ErrorInfo.reason`` (else of its code) rebuilds it. Unknown or detail-less
    failures become ``Unavailable`` (UNAVAILABLE, DEADLINE_EXCEEDED) or a generic
    internal error; the downstream's message text is only kept by the rows whose
    messages the servers write for clients."""
    received = _received(err)
    return kind_for(err.code(), received.reason).rebuild(received)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def from_status(status: status_pb2.Status) -> errors.TaskmeshError:
    """The domain error of a ``google.rpc.Status`` (a batch call's failed item), rebuilt
    exactly as :func:`from_rpc_error` rebuilds a failed call with that status."""
    received = _read(status.message, status)
    return kind_for(_CODES.get(status.code), received.reason).rebuild(received)


def code_name(status: status_pb2.Status) -> str:
    """The gRPC code name of ``status`` ("NOT_FOUND"), "UNKNOWN" for a number gRPC lacks."""
    code = _CODES.get(status.code)
    return code.name if code is not None else "UNKNOWN"


def item_status(exc: Exception) -> status_pb2.Status:
    """The status of one failed item of a batch call: :func:`status_of` for a domain
    error, else the bare INTERNAL a unary call ends with (the caller logs the error)."""
    if isinstance(exc, errors.TaskmeshError):
        return status_of(exc)
    return status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=INTERNAL_MESSAGE)
