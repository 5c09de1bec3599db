"""Users and their API keys.

Keys are 256-bit random strings, stored only as SHA-256 hashes: a lookup by
hash reveals nothing useful through timing, and a stolen database holds no
usable key. The prefix kept beside the hash lets operators name a key."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from services.tasks.domain import models as m
from services.tasks.domain.ports import DuplicateKey, RateLimiter, Store
from taskmesh import errors
from taskmesh.api_keys import MAX_KEY_LENGTH, MIN_KEY_LENGTH, new_api_key, valid_key
from taskmesh.hidden_chars import JOINERS, hidden

#: Characters of a key stored in clear to identify it (``users list``).
SHOWN_PREFIX = 12
MIN_REVOKE_PREFIX = 8


def shown_prefix(key: str) -> str:
    """The part of a key kept in clear: at most SHOWN_PREFIX characters and
    never more than half the key, so a short configured key keeps at least
    eight secret characters."""
    return key[: min(SHOWN_PREFIX, len(key) // 2)]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class UserService:
    """Users and keys on ``store`` (``ports.Store``); ``limiter`` (``ports.RateLimiter``),
    when given, takes one request token per authentication (SPEC §9)."""

    def __init__(self, store: Store, limiter: RateLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter

    async def create(self, name: str, key: str | None = None) -> tuple[m.User, str]:
        name = name.strip()
        if not name or len(name) > 100:
            raise errors.InvalidInput("user name must be 1-100 characters")
        # Joiners are part of how Persian and Indic names are spelt.
        if any(hidden(c) and c not in JOINERS for c in name):
            # `taskmesh users list` prints one tab-separated line per key: a tab or a line
            # break in a name would forge a column or a row (a wrong user id to a script).
            raise errors.InvalidInput(
                "user name must not contain tabs, line breaks, control or invisible characters"
            )
        key = key or new_api_key()
        if not valid_key(key):
            raise errors.InvalidInput(
                f"an API key is {MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} printable ASCII characters"
            )
        now = datetime.now(UTC)
        async with self.store.write() as tx:
            try:
                user = await tx.users.insert(name, now)
            except DuplicateKey:
                raise errors.FailedPrecondition(f"user {name!r} already exists") from None
            await tx.users.insert_key(user.id, hash_key(key), shown_prefix(key), now)
        return user, key

    async def ensure_dev_user(self, key: str) -> bool:
        """Creates the user ``dev`` with ``key`` when no user exists yet."""
        async with self.store.read() as tx:
            if await tx.users.count():
                return False
        try:
            await self.create("dev", key)
        except errors.FailedPrecondition:
            return False  # another process won the race
        return True

    async def authenticate(self, key: str) -> m.User:
        """The key's user, after taking one token from their request bucket. Raises
        Unauthenticated or ResourceExhausted (RATE_LIMITED, with the wait)."""
        (user,) = await self.authenticate_many([key])
        if isinstance(user, errors.TaskmeshError):
            raise user
        return user

    async def authenticate_many(self, keys: list[str]) -> list[m.User | errors.TaskmeshError]:
        """:meth:`authenticate` for several requests at once (CreateTasks): per key, in
        order, its user or the error :meth:`authenticate` would raise. The keys are
        looked up in one read transaction; each request takes its own rate token."""
        hashes = {key: hash_key(key) for key in set(keys) if valid_key(key)}
        found: dict[str, m.User | None] = {}
        if hashes:
            async with self.store.read() as tx:
                for key, key_hash in hashes.items():
                    found[key] = await tx.users.for_key_hash(key_hash)
        answers: list[m.User | errors.TaskmeshError] = []
        for key in keys:
            user = found.get(key)
            if user is None:
                answers.append(errors.Unauthenticated("invalid API key"))
                continue
            wait = await self.limiter.acquire(user.id) if self.limiter is not None else 0.0
            if wait > 0:
                answers.append(
                    errors.ResourceExhausted(
                        "Too many requests.", retry_after_s=wait, reason=errors.RATE_LIMITED
                    )
                )
            else:
                answers.append(user)
        return answers

    async def existing(self, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` that name a user, in one read: an internal caller's
        CreateTasks items name their user directly, and an unknown one is that item's
        NotFound, not a failed insert that would take the batch's transaction with it."""
        async with self.store.read() as tx:
            return await tx.users.existing(sorted(set(user_ids)))

    async def list(self) -> list[m.UserKey]:
        async with self.store.read() as tx:
            return await tx.users.list_keys()

    async def revoke(self, prefix: str) -> int:
        if len(prefix) < MIN_REVOKE_PREFIX:
            raise errors.InvalidInput(f"give at least {MIN_REVOKE_PREFIX} characters of the key")
        async with self.store.write() as tx:
            # The whole key first (configured keys need not look like generated
            # ones), then the prefix kept in clear.
            ids = (
                await tx.users.live_key_ids_for_hash(hash_key(prefix)) if valid_key(prefix) else []
            )
            if not ids and len(prefix) <= SHOWN_PREFIX:
                ids = await tx.users.live_key_ids_with_prefix(prefix)
            if not ids:
                raise errors.NotFound("no live key has that prefix")
            if len(ids) > 1:
                raise errors.FailedPrecondition("the prefix matches several keys; give more")
            await tx.users.revoke_key(ids[0], datetime.now(UTC))
        return 1
