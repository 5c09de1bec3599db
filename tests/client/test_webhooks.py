"""Webhook signature verification (Standard Webhooks): genuine deliveries are
accepted, altered, foreign, unsigned and replayed-late ones refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from taskmesh.client import InvalidSignature, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
EVENT = {
    "type": "job.succeeded",
    "timestamp": "2025-01-15T12:00:00.000Z",
    "data": {"jobId": "0b7c6f2e-3c1d-4d1e-9a57-5d0f1c2b3a4e", "status": "succeeded"},
}


def delivery(
    secret: str = SECRET, when: datetime | None = None, msg_id: str = "msg_1"
) -> tuple[bytes, dict[str, str]]:
    when = when or datetime.now(UTC)
    body = json.dumps(EVENT, separators=(",", ":"))
    signature = Webhook(secret).sign(msg_id, when, body)
    headers = {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": signature,
    }
    return body.encode(), headers


def test_a_genuine_delivery_is_verified_whatever_the_header_case() -> None:
    body, headers = delivery()
    assert verify_webhook(SECRET, body, headers) == EVENT
    assert verify_webhook(SECRET, body.decode(), {k.lower(): v for k, v in headers.items()})


@pytest.mark.parametrize(
    "tamper",
    ["body", "secret", "id", "unsigned", "late", "early", "not-json-object"],
)
def test_anything_else_is_refused(tamper: str) -> None:
    body, headers = delivery()
    secret = SECRET
    if tamper == "body":
        body = body.replace(b"succeeded", b"failed")
    elif tamper == "secret":
        secret = OTHER
    elif tamper == "id":
        headers["Webhook-Id"] = "msg_2"
    elif tamper == "unsigned":
        del headers["Webhook-Signature"]
    elif tamper == "late":
        body, headers = delivery(when=datetime.now(UTC) - timedelta(minutes=10))
    elif tamper == "early":
        body, headers = delivery(when=datetime.now(UTC) + timedelta(minutes=10))
    else:
        when = datetime.now(UTC)
        body = b"[1, 2]"
        headers["Webhook-Signature"] = Webhook(secret).sign("msg_1", when, body.decode())
        headers["Webhook-Timestamp"] = str(int(when.timestamp()))
    with pytest.raises(InvalidSignature):
        verify_webhook(secret, body, headers)
