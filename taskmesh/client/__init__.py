"""A small Python client of the taskmesh HTTP API (SPEC §5), on httpx.

    from taskmesh.client import TaskmeshClient

    with TaskmeshClient("http://127.0.0.1:8080", api_key) as tm:
        job = tm.submit("Pay the electricity bill tomorrow", wait_s=10)
        job = tm.wait(job["jobId"])          # the terminal job (dict, camelCase as on the wire)
        for event in tm.events(job_id): ...  # server-sent events until terminal
        tm.cancel(job_id)

Webhook receivers verify deliveries with ``verify_webhook``."""

from __future__ import annotations

from taskmesh.client.client import (
    DEFAULT_URL,
    TERMINAL,
    ApiError,
    JobEvent,
    TaskmeshClient,
    WaitTimeout,
    gateway_base,
)
from taskmesh.client.webhooks import InvalidSignature, verify_webhook

__all__ = [
    "DEFAULT_URL",
    "TERMINAL",
    "ApiError",
    "InvalidSignature",
    "JobEvent",
    "TaskmeshClient",
    "WaitTimeout",
    "gateway_base",
    "verify_webhook",
]
