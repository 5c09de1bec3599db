"""API-key authentication of the ``/api/v1`` routes.

The Tasks service owns the key lookup and the per-user rate limit. The key rides
on the first Tasks call the route makes (``gateway.clients.acting_for``), which
checks it and takes the rate token before doing anything else: one hop per
request, and a revoked key is refused on the very next one. A request that fails
before any call carried the key has it checked by Authenticate first, so a bad
key is still answered 401 (and a spent bucket 429) ahead of any other error. A
header that cannot hold a key is refused here without a round trip, and so is a request
with two of them (400: RFC 9110 §5.3)."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any

from sanic import HTTPResponse, Request

from gateway.body import field_problem
from gateway.clients import User, acting_for
from gateway.request_ids import request_id_of
from gateway.schemas import FieldError
from gateway.state import state
from taskmesh import errors

#: SPEC §4: a key is 16-200 printable ASCII characters (configured keys need not be
#: RFC 6750 ``b64token``s); the edges cannot be spaces, which HTTP trims from a header.
_BEARER = re.compile(r"^Bearer +([\x21-\x7e](?:[\x20-\x7e]{14,198})[\x21-\x7e]) *$", re.IGNORECASE)

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse | None]]


def bearer_key(request: Request) -> str:
    """The API key of the one ``Authorization`` header. Raises ProblemError (400) when the
    header is repeated, Unauthenticated when it is missing or cannot hold a key."""
    values: list[str] = request.headers.getall("Authorization", [])
    if len(values) > 1:
        # RFC 9110 §5.3: a field that is not a list must not repeat. Which of the two a
        # server, a proxy or a log reads differs between them, so neither is looked up.
        raise field_problem(
            [FieldError(field="Authorization", message="must be given at most once")], "headers"
        )
    match = _BEARER.match(values[0] if values else "")
    if match is None:
        raise errors.Unauthenticated("Missing or malformed Authorization header.")
    return match.group(1)


def authenticated(handler: Handler) -> Handler:
    """Runs ``handler`` for the caller, passed as its second argument (a ``User`` whose
    ``id`` Tasks fills in with the first call). Raises Unauthenticated for a missing,
    malformed or unknown key, ResourceExhausted(RATE_LIMITED) past the request rate."""

    @wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
        user = User(bearer_key(request))
        request.ctx.user = user
        tasks = state(request).tasks
        with acting_for(user):
            try:
                response = await handler(request, user, *args, **kwargs)
            except Exception:
                if not user.presented:
                    await tasks.authenticate(user, request_id=request_id_of(request))
                raise
        if not user.presented:
            await tasks.authenticate(user, request_id=request_id_of(request))
        return response

    return wrapper
