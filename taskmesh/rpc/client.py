"""Client side of internal gRPC: the channels, with the call path of
``taskmesh.rpc.calls`` (internal token, request/job ids, deadlines, domain errors).

No retries here: each hop has one retry owner, and for the request path that
is the HTTP client (it gets 503 with Retry-After)."""

from __future__ import annotations

import re

import grpc

from taskmesh.ids import new_uuid4
from taskmesh.rpc import calls, tls
from taskmesh.rpc.calls import REQUEST_ID_KEY
from taskmesh.settings import default

__all__ = ["REQUEST_ID_KEY", "channel", "new_request_id", "remaining", "valid_request_id"]

#: Deadline of a call that names none, seconds (GRPC_CALL_TIMEOUT_S's default; the
#: services pass their setting).
DEFAULT_TIMEOUT_S: float = default("grpc_call_timeout_s")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh request id: a random UUID in its canonical text form."""
    return new_uuid4()


#: Reconnect backoff of every internal channel, milliseconds. gRPC's defaults
#: (1 s growing ×1.6 to 120 s) keep a channel TRANSIENT_FAILURE for up to two
#: minutes after a peer returns; SPEC §8 wants service again within 3 s of a
#: dependency answering, so retries stay between 0.2 and 1 s.
RECONNECT_BACKOFF_MS = {
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.min_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 1000,
}


def channel(
    addr: str,
    tls_config: tls.TlsConfig | None = None,
    *,
    token: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> grpc.aio.Channel:
    """The one way an internal gRPC channel is made (gateway → Tasks/AI, Tasks → AI,
    worker → Tasks) to ``addr`` (HOST:PORT): no hidden retries, fast reconnects
    (RECONNECT_BACKOFF_MS); TLS when ``tls_config``, else the process's configuration
    (``taskmesh.rpc.tls``), has a CA; plaintext otherwise.

    With ``token`` (the internal token) every call but health and reflection goes
    through ``taskmesh.rpc.calls.Outbound``: credentials, ids, a deadline (``timeout_s``
    seconds unless the call names one) and failures raised as ``taskmesh.errors``."""
    options = [
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),
        *RECONNECT_BACKOFF_MS.items(),
    ]
    interceptors = calls.interceptors(token, timeout_s) if token is not None else None
    credentials = tls.channel_credentials(tls_config)
    if credentials is not None:
        return grpc.aio.secure_channel(
            addr,
            credentials,
            options=options + tls.channel_options(tls_config),
            interceptors=interceptors,
        )
    return grpc.aio.insecure_channel(addr, options=options, interceptors=interceptors)


def remaining(context: grpc.aio.ServicerContext | None, default: float) -> float:
    """The deadline to give a downstream call: what is left of ours, capped."""
    if context is None:
        return default
    left = context.time_remaining()
    return default if left is None else max(0.05, min(default, left - 0.01))
