"""grpc.aio server bootstrap: health, reflection, internal auth, request ids,
error mapping and metrics, the same in every service."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from taskmesh import errors, metrics
from taskmesh.logs import bind
from taskmesh.rpc import status, tls
from taskmesh.rpc.calls import JOB_ID_KEY, REQUEST_ID_KEY, inbound_deadline
from taskmesh.rpc.client import valid_request_id

log = logging.getLogger(__name__)

#: Messages are small (a sentence in, a task out); anything larger is hostile.
MAX_MESSAGE_BYTES = 256 * 1024

_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _split(method: str) -> tuple[str, str]:
    _, service, name = method.split("/", 2) if method.count("/") >= 2 else ("", method, "")
    return service, name


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Every RPC but health and reflection needs ``authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")

        self._deny_unary: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
            deny
        )

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")
            yield  # pragma: no cover - makes this an async generator

        self._deny_stream: grpc.RpcMethodHandler[Any, Any] = grpc.unary_stream_rpc_method_handler(
            deny_stream
        )

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if details.method.startswith(_OPEN_SERVICES):
            return await continuation(details)
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else value
                break
        if hmac.compare_digest(presented, self._expected):
            return await continuation(details)
        handler = await continuation(details)
        if handler is not None and handler.unary_stream is not None:
            return self._deny_stream
        return self._deny_unary


class ObserveInterceptor(grpc.aio.ServerInterceptor):
    """Binds the caller's request id to the logs, maps domain errors to status
    codes (anything unexpected becomes a bare INTERNAL) and records metrics."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_SERVICES):
            return handler
        request_id = job_id = None
        for key, value in details.invocation_metadata or ():
            if key in (REQUEST_ID_KEY, JOB_ID_KEY) and isinstance(value, str):
                if not valid_request_id(value):
                    continue  # a caller's junk must not reach the logs
                if key == REQUEST_ID_KEY:
                    request_id = value
                else:
                    job_id = value
        return around_handler(
            handler,
            lambda request, context: _observed(
                context, details.method, request_id, _job_id(request) or job_id
            ),
        )


Around = Callable[[Any, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]


def around_handler(
    handler: grpc.RpcMethodHandler[Any, Any], around: Around
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with each call run inside ``around(request, context)``: the way every
    server interceptor here wraps unary and server-streaming methods (others unchanged)."""
    if handler.unary_unary is not None:
        # grpc.aio awaits a unary handler and iterates a stream handler asynchronously;
        # the stubs describe the synchronous server's handlers.
        inner = cast(
            "Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]",
            handler.unary_unary,
        )

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with around(request, context):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    if handler.unary_stream is not None:
        inner_stream = cast(
            "Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]",
            handler.unary_stream,
        )

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with around(request, context):
                async for item in inner_stream(request, context):
                    yield item

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


def _job_id(request: Any) -> str | None:
    """The job a request is about, for its log lines (SPEC §12: the job id on every
    line about a job); None for requests without one."""
    return getattr(request, "job_id", None) or None


@asynccontextmanager
async def _observed(
    context: grpc.aio.ServicerContext, method: str, request_id: str | None, job_id: str | None
) -> AsyncIterator[None]:
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    with bind(request_id=request_id, job_id=job_id), inbound_deadline(context):
        try:
            yield
        except errors.TaskmeshError as exc:
            code, rich = status.to_status(exc)
            await context.abort_with_status(rich)
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, status.INTERNAL_MESSAGE)
        finally:
            seconds = time.perf_counter() - start
            service, name = _split(method)
            metrics.grpc_handled.labels(service, name, code.name).inc()
            metrics.grpc_handling.labels(service, name).observe(seconds)
            # One line per call, inside bind(): every service's log carries the request id.
            log.info("rpc", extra={"rpc": name, "code": code.name, "seconds": round(seconds, 6)})


class ListenError(OSError):
    """The server's address could not be bound."""


Registrar = Callable[[grpc.aio.Server], None]


async def start_server(
    addr: str,
    token: str,
    registrars: Iterable[Registrar],
    service_names: Iterable[str],
    tls_config: tls.TlsConfig | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """Starts a server with the services plus health and reflection; returns it,
    its health servicer (set SERVING by the caller once ready) and the bound port.
    Serves TLS (mTLS with a CA) when ``tls_config``, else the process's configuration
    (``taskmesh.rpc.tls``), has a certificate. ``interceptors`` run inside the
    internal-token check and the error mapping (their domain errors become statuses)."""
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(token), ObserveInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    credentials = tls.server_credentials(tls_config)
    try:
        if credentials is None:
            port = server.add_insecure_port(addr)
        else:
            port = server.add_secure_port(addr, credentials)
    except RuntimeError:
        port = 0
    if port == 0 and not addr.endswith(":0"):
        raise ListenError(f"cannot listen on {addr} (address in use?)")
    await server.start()
    return server, health_servicer, port


async def set_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str], up: bool):
    state = (
        health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ["", *names]:
        await health_servicer.set(name, state)
