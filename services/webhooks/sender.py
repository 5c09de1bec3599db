"""One delivery attempt: resolve and check the address, sign, POST.

The request goes to the address that passed the SSRF check (the host name
stays in the Host header and, for https, in SNI and certificate
verification), redirects are not followed, proxies from the environment are
ignored, and the whole attempt, connect to answer, is bounded by
WEBHOOK_TIMEOUT_S. The answer's body is never read."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from taskmesh import metrics
from taskmesh.webhook_urls import RefusedUrl, Unresolvable, resolve

log = logging.getLogger(__name__)

USER_AGENT = "taskmesh-webhooks/1"


class Result(enum.Enum):
    DELIVERED = "delivered"
    #: Non-2xx, timeout, connection error, or a host that does not resolve now.
    FAILED = "failed"
    #: The URL resolves to a refused address: never retried.
    BLOCKED = "blocked"


def signed_headers(secret: str, event_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers: webhook-id, webhook-timestamp (Unix seconds),
    webhook-signature ("v1," + base64 HMAC-SHA256 of "id.timestamp.body")."""
    signature = Webhook(secret).sign(event_id, now, body.decode())
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


class Sender:
    def __init__(self, timeout_s: float, allow_private: bool) -> None:
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    async def send(self, url: str, secret: str, event_id: str, body: bytes) -> Result:
        started = time.monotonic()
        try:
            target = await resolve(url, self.allow_private, timeout=self.timeout_s)
        except Unresolvable:
            log.warning("webhook host does not resolve", extra={"webhook_id": event_id})
            return Result.FAILED
        except RefusedUrl as exc:
            log.warning("webhook refused: %s", exc, extra={"webhook_id": event_id, "url": url})
            return Result.BLOCKED
        headers = {
            "host": target.host_header,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signed_headers(secret, event_id, body, datetime.now(UTC)),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        left = max(0.05, self.timeout_s - (time.monotonic() - started))
        try:
            # httpx bounds each phase; this bounds the attempt (a slow trickle too).
            async with (
                asyncio.timeout(left),
                self._client.stream(
                    "POST",
                    target.connect_url,
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    timeout=httpx.Timeout(left),
                ) as response,
            ):
                status = response.status_code
        except (httpx.HTTPError, TimeoutError) as exc:
            log.info(
                "webhook attempt failed: %s", type(exc).__name__, extra={"webhook_id": event_id}
            )
            return Result.FAILED
        finally:
            metrics.webhook_delivery_latency.observe(time.monotonic() - started)
        if 200 <= status < 300:
            return Result.DELIVERED
        log.info("webhook answered %d", status, extra={"webhook_id": event_id})
        return Result.FAILED

    async def close(self) -> None:
        await self._client.aclose()
