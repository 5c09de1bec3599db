"""Verifying webhook deliveries (SPEC §5, the Standard Webhooks specification).

A delivery is a ``POST`` with ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers: ``v1,`` + base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` under the endpoint's secret (``whsec_…``, shown once
when the endpoint is created). The ``standardwebhooks`` package checks the
signature in constant time and refuses timestamps more than five minutes off,
so a captured delivery cannot be replayed later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class InvalidSignature(Exception):
    """The delivery was not signed with this secret, was altered, or is too old."""


def verify_webhook(secret: str, body: bytes | str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The event ``{"type", "timestamp", "data": Job}`` of a genuine delivery.

    ``body`` must be the raw request body as received (re-serialised JSON would
    not match the signature); ``headers`` any mapping, names in any case.
    Raises InvalidSignature otherwise. Deduplicate on ``headers["webhook-id"]``:
    it is the same for every retry of one event."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        event = Webhook(secret).verify(body, lowered)
    except (WebhookVerificationError, ValueError) as exc:
        raise InvalidSignature(str(exc)) from None
    if not isinstance(event, dict):
        raise InvalidSignature("the body is not a JSON object")
    return event
