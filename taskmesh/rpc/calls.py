"""The one client path of internal gRPC: a client interceptor that every internal
channel carries (``taskmesh.rpc.client.channel(..., token=...)``).

Per call it adds the internal token, the request id and job id of the work being
done (from the logging context), and a deadline: the one the caller gave, else the
channel's default, never more than what is left of the server handler the call is
made from (SPEC §6: "clients set deadlines on every call and forward the remaining
time downstream"). A failed call raises the domain error of ``taskmesh.errors``
rebuilt by ``taskmesh.rpc.status.from_rpc_error``, so callers handle one error
family whatever the hop.

No retries here: each hop has one retry owner (``taskmesh.rpc.retry``)."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc

from taskmesh import errors
from taskmesh.logs import job_id_var, request_id_var
from taskmesh.rpc import status
from taskmesh.scoped import scoped

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
JOB_ID_KEY = "x-job-id"
#: Where grpcio-status puts rich details; a status without them was not written by a
#: taskmesh servicer (the peer's auth interceptor, the transport, a proxy).
STATUS_DETAILS_KEY = "grpc-status-details-bin"
#: Left to the callee to answer within, seconds, when forwarding a handler's deadline.
FORWARD_MARGIN_S = 0.01
#: The least deadline forwarded, seconds: below it a call cannot succeed, but it must
#: still be made so the failure is the callee's DEADLINE_EXCEEDED, not a guess.
MIN_FORWARD_S = 0.05
#: Methods outside the domain: their failures are answers (a probe's "not serving").
_PASSTHROUGH = ("/grpc.health.v1.Health/", "/grpc.reflection.")

#: Absolute deadline (time.monotonic seconds) of the server handler the current task
#: runs in; set by the server's ObserveInterceptor through ``inbound_deadline``.
_deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "rpc_deadline", default=None
)


@contextmanager
def inbound_deadline(context: grpc.aio.ServicerContext) -> Iterator[None]:
    """Marks the calls made inside this block as done on behalf of ``context``, so
    their deadlines are capped by what is left of its deadline."""
    left = context.time_remaining()
    with scoped(_deadline_var, None if left is None else time.monotonic() + left):
        yield


def deadline(timeout: float | None, default: float) -> float:
    """The deadline, seconds, to give a call: ``timeout`` (else ``default``), capped by
    the inbound handler's remaining time less FORWARD_MARGIN_S, at least MIN_FORWARD_S."""
    wanted = default if timeout is None else timeout
    until = _deadline_var.get()
    if until is None:
        return wanted
    left = until - time.monotonic() - FORWARD_MARGIN_S
    return max(MIN_FORWARD_S, min(wanted, left))


def auth_metadata(token: str) -> tuple[str, str]:
    """The metadata entry that carries the internal token (SPEC §6); for tools that
    make raw calls and show the raw status, such as the operator CLI."""
    return ("authorization", f"Bearer {token}")


def _rich(err: grpc.aio.AioRpcError) -> bool:
    return any(key == STATUS_DETAILS_KEY for key, _ in err.trailing_metadata() or ())


def translate(err: grpc.aio.AioRpcError, method: str) -> errors.TaskmeshError:
    """The domain error for a failed call to ``method`` (its full gRPC path).

    A bare UNAUTHENTICATED refused *our* internal token, which no end user can fix:
    it becomes an internal error and an error log line. Unavailable and internal
    failures are logged as warnings without the peer's message (it may carry an
    address or a driver's text that must not reach a client)."""
    code = err.code()
    if code == grpc.StatusCode.UNAUTHENTICATED and not _rich(err):
        log.error("peer refused the internal credentials", extra={"rpc": method})
        return errors.TaskmeshError("Internal error.")
    converted = status.from_rpc_error(err)
    if type(converted) is errors.TaskmeshError or isinstance(converted, errors.Unavailable):
        log.warning(
            "internal call failed",
            extra={"rpc": method, "grpc_code": code.name if code else None},
        )
    return converted


def _method_name(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else method


class _Outbound:
    """Credentials, ids, deadline and error translation for every call of a channel.

    ``token`` is the internal token (SPEC §4 ``INTERNAL_AUTH_TOKEN``);
    ``default_timeout_s`` the deadline of a call that names none (seconds)."""

    def __init__(self, token: str, default_timeout_s: float) -> None:
        self._auth = auth_metadata(token)
        self._default_timeout_s = default_timeout_s

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._auth)
        rid = request_id_var.get()
        if rid and REQUEST_ID_KEY not in metadata:
            metadata.add(REQUEST_ID_KEY, rid)
        job_id = job_id_var.get()
        if job_id and JOB_ID_KEY not in metadata:
            metadata.add(JOB_ID_KEY, job_id)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=deadline(details.timeout, self._default_timeout_s),
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def _start(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> tuple[str | None, Any]:
        """The call begun, with its method; the method is None for health and
        reflection, whose calls go out as they are."""
        method = _method_name(details)
        if method.startswith(_PASSTHROUGH):
            return None, await continuation(details, request)
        return method, await continuation(self._details(details), request)


class OutboundUnary(_Outbound, grpc.aio.UnaryUnaryClientInterceptor):
    """``_Outbound`` for unary calls: returns the response or raises the domain error."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method, call = await self._start(continuation, client_call_details, request)
        if method is None:
            return call
        try:
            await call
        except grpc.aio.AioRpcError as err:
            raise translate(err, method) from None
        # The call itself, not its response: the caller can still read its metadata.
        return call


class OutboundStream(_Outbound, grpc.aio.UnaryStreamClientInterceptor):
    """``_Outbound`` for server streams: an iterator of the messages that raises the
    domain error."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method, call = await self._start(continuation, client_call_details, request)
        return call if method is None else _translated_stream(call, method)


async def _translated_stream(call: Any, method: str) -> AsyncIterator[Any]:
    """The messages of a server stream; its failure as a domain error. Closing the
    iterator early cancels the call."""
    try:
        async for message in call:
            yield message
    except grpc.aio.AioRpcError as err:
        raise translate(err, method) from None
    finally:
        call.cancel()


def interceptors(token: str, default_timeout_s: float) -> Sequence[grpc.aio.ClientInterceptor]:
    """What ``taskmesh.rpc.client.channel`` installs on an internal channel: one
    instance per call kind, as grpc.aio files each interceptor under one kind only."""
    return [OutboundUnary(token, default_timeout_s), OutboundStream(token, default_timeout_s)]
