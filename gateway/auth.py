"""API-key authentication of the ``/api/v1`` routes.

The Tasks service owns the key lookup and the per-user rate limit, so one
Authenticate call per request does both; a header that cannot hold a key is
refused here without a round trip."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from sanic import HTTPResponse, Request

from gateway.clients import User
from gateway.request_ids import request_id_of
from gateway.state import state
from taskmesh import errors

#: SPEC §4: a key is 16-200 printable ASCII characters (configured keys need not be
#: RFC 6750 ``b64token``s); the edges cannot be spaces, which HTTP trims from a header.
_BEARER = re.compile(r"^Bearer +([\x21-\x7e](?:[\x20-\x7e]{14,198})[\x21-\x7e]) *$", re.IGNORECASE)

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse | None]]


def bearer_key(request: Request) -> str:
    match = _BEARER.match(request.headers.get("Authorization", ""))
    if match is None:
        raise errors.Unauthenticated("Missing or malformed Authorization header.")
    return match.group(1)


def authenticated(handler: Handler) -> Handler:
    """Resolves the caller and passes it to ``handler`` as its second argument."""

    @wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
        key = bearer_key(request)
        user: User = await state(request).tasks.authenticate(key, request_id=request_id_of(request))
        request.ctx.user = user
        return await handler(request, user, *args, **kwargs)

    return wrapper
