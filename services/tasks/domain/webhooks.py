"""Webhook endpoints: register, list, delete, and what a delivery needs
(SPEC §5). The outbox rows themselves are written by the job lifecycle
(``ports.JobsTx.finish``) and published by the relay."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.tasks.domain import webhook_models as wm
from services.tasks.domain.ports import Store
from taskmesh import errors
from taskmesh.webhook_urls import RefusedUrl, Unresolvable, resolve

#: Endpoints one user may have (Stripe allows 16 per account; a handful is typical).
MAX_ENDPOINTS_PER_USER = 10
#: Seconds registration waits for DNS: well inside the gateway's 5 s call deadline.
REGISTRATION_RESOLVE_S = 2.0
#: Secret size, bytes: Standard Webhooks asks for 24 to 64 random bytes.
SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks signing secret: "whsec_" + base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class WebhookPolicy:
    #: WEBHOOK_ALLOW_PRIVATE: accept URLs resolving to non-public addresses.
    allow_private: bool = False


def _events(requested: list[str]) -> list[str]:
    if not requested:
        return list(wm.EVENT_TYPES)
    unknown = [e for e in requested if e not in wm.EVENT_TYPES]
    if unknown:
        raise errors.InvalidInput(
            "unknown event type",
            [errors.FieldViolation("events", f"must be among {', '.join(wm.EVENT_TYPES)}")],
        )
    return [e for e in wm.EVENT_TYPES if e in requested]  # canonical order, no repeats


class WebhookService:
    def __init__(
        self,
        store: Store,
        policy: WebhookPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy or WebhookPolicy()
        self.now = clock

    async def register(
        self, user_id: str, url: str, events: list[str]
    ) -> tuple[wm.WebhookEndpoint, str]:
        """Creates an endpoint; returns it with its secret (shown only now).

        Raises InvalidInput (field ``url`` or ``events``) for a URL that is not
        http(s), carries credentials, or resolves to a refused address (SPEC
        §5), and WebhookLimitReached past MAX_ENDPOINTS_PER_USER. A name that does
        not resolve now is accepted; deliveries check it again."""
        subscribed = _events(events)
        try:
            await resolve(url, self.policy.allow_private, timeout=REGISTRATION_RESOLVE_S)
        except Unresolvable:
            # Not refused: a name may not resolve yet (or not from here). Every
            # delivery resolves and checks it again, and fails while it does not.
            pass
        except RefusedUrl as exc:
            raise errors.InvalidInput(
                f"url {exc}", [errors.FieldViolation("url", str(exc))]
            ) from None
        secret = new_secret()
        async with self.store.write() as tx:
            if await tx.webhooks.count_endpoints(user_id) >= MAX_ENDPOINTS_PER_USER:
                raise errors.WebhookLimitReached(
                    f"At most {MAX_ENDPOINTS_PER_USER} webhook endpoints per user; delete one "
                    "before registering another."
                )
            endpoint = await tx.webhooks.insert_endpoint(
                user_id, url, subscribed, secret, self.now()
            )
        return endpoint, secret

    async def list(self, user_id: str) -> list[wm.WebhookEndpoint]:
        async with self.store.read() as tx:
            return await tx.webhooks.list_endpoints(user_id)

    async def delete(self, user_id: str, endpoint_id: str) -> None:
        """Deletes the endpoint; its pending and future deliveries stop.
        Raises NotFound for an id the user does not own."""
        async with self.store.write() as tx:
            if not await tx.webhooks.delete_endpoint(user_id, endpoint_id):
                raise errors.NotFound("webhook endpoint not found")

    async def target(self, endpoint_id: str) -> wm.WebhookTarget:
        """The endpoint and its secret for a delivery; NotFound once deleted."""
        async with self.store.read() as tx:
            target = await tx.webhooks.get_target(endpoint_id)
        if target is None:
            raise errors.NotFound("webhook endpoint not found")
        return target
