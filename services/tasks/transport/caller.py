"""The API key a gateway call carries, checked by the Tasks service itself
(``taskmesh.rpc.caller``): no Authenticate hop per HTTP request."""

from __future__ import annotations

from services.tasks.domain.users import UserService
from taskmesh.rpc.caller import CallerInterceptor


def caller_interceptor(users: UserService) -> CallerInterceptor:
    """Checks a carried API key by the same rule as the Authenticate RPC: the key's live
    user, after one token from their request bucket (SPEC §9); raises Unauthenticated
    or ResourceExhausted(RATE_LIMITED)."""

    async def check_key(key: str) -> tuple[str, str]:
        user = await users.authenticate(key)
        return user.id, user.name

    return CallerInterceptor(check_key)
