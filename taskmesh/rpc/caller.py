"""An end user's API key carried in the metadata of the call made on their behalf,
so the gateway needs no Authenticate hop per request (issue #12: ~2 ms of CPU a
job) while every request is still checked and rate-limited by the Tasks service,
and a revoked key is refused on the very next request (SPEC §4, §9).

The gateway sends the key (API_KEY_KEY) with the first Tasks call of a request;
``CallerInterceptor`` on the Tasks server checks it before the handler runs, puts
the user's id in the request's ``user_id`` and answers with the user in the
call's initial metadata (USER_ID_KEY, USER_NAME_KEY), which later calls of the same
request use instead of the key. A call without the key is unchanged: internal
callers holding the internal token name the user themselves (grpcurl, the CLI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from taskmesh import errors
from taskmesh.rpc.server import around_handler

API_KEY_KEY = "x-taskmesh-api-key"
USER_ID_KEY = "x-taskmesh-user-id"
#: Binary (``-bin``): a user's name may be any text, metadata values only ASCII.
USER_NAME_KEY = "x-taskmesh-user-name-bin"

#: The key check: the user's (id, name) for an API key, after taking one token from
#: their request bucket. Raises Unauthenticated or ResourceExhausted (RATE_LIMITED).
CheckKey = Callable[[str], Awaitable[tuple[str, str]]]


def _key_of(details: grpc.HandlerCallDetails) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == API_KEY_KEY:
            return value if isinstance(value, str) else value.decode("ascii", "replace")
    return None


def _act_for(request: Any, user_id: str) -> None:
    """Makes ``request`` one on behalf of ``user_id`` alone; InvalidInput for an RPC
    that is not made on behalf of a user."""
    fields = request.DESCRIPTOR.fields_by_name
    if "user_id" not in fields:
        raise errors.InvalidInput("this call is not made on behalf of a user")
    request.user_id = user_id
    if "all_users" in fields:
        request.all_users = False


class CallerInterceptor(grpc.aio.ServerInterceptor):
    """Checks the API key a call carries with ``check_key`` before its handler runs.

    Install it after ``ObserveInterceptor`` (``start_server(interceptors=...)``) so a
    refused key becomes UNAUTHENTICATED / RESOURCE_EXHAUSTED with rich details."""

    def __init__(self, check_key: CheckKey) -> None:
        self._check_key = check_key

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        key = _key_of(details)
        if handler is None or key is None:
            return handler
        return around_handler(handler, lambda request, context: self._acting(key, request, context))

    @asynccontextmanager
    async def _acting(
        self, key: str, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        user_id, name = await self._check_key(key)
        _act_for(request, user_id)
        await context.send_initial_metadata(
            ((USER_ID_KEY, user_id), (USER_NAME_KEY, name.encode()))
        )
        yield


def user_of(metadata: Any) -> tuple[str, str] | None:
    """The (id, name) a Tasks answer named in its initial metadata, if it checked a key."""
    user_id = name = None
    for key, value in metadata or ():
        if key == USER_ID_KEY:
            user_id = value if isinstance(value, str) else value.decode()
        elif key == USER_NAME_KEY:
            name = value.decode() if isinstance(value, bytes) else value
    return None if user_id is None else (user_id, name or "")
