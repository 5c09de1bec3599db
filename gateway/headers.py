"""Request headers with rules of their own: ``Idempotency-Key`` and ``Prefer``."""

from __future__ import annotations

import re

from sanic import Request

from gateway.body import field_problem
from gateway.schemas import FieldError

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Printable ASCII: keys are compared byte for byte downstream.
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,200}$")
#: SPEC §5: a client may wait at most this long for the job.
MAX_WAIT_S = 30


def idempotency_key(request: Request) -> str | None:
    values: list[str] = request.headers.getall(IDEMPOTENCY_HEADER, [])
    if not values:
        return None
    if len(values) > 1 or not _IDEMPOTENCY_KEY.match(values[0]) or not values[0].strip():
        raise field_problem(
            [
                FieldError(
                    field=IDEMPOTENCY_HEADER,
                    message="must be one value of 1 to 200 printable ASCII characters",
                )
            ],
            "headers",
        )
    return values[0]


def preferred_wait(request: Request) -> int | None:
    """Seconds from ``Prefer: wait=N`` (RFC 7240), capped at ``MAX_WAIT_S``.

    A preference is a hint: one that cannot be parsed is ignored, not an error."""
    for header in request.headers.getall("Prefer", []):
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            value = value.strip().strip('"')
            # ASCII digits only (int() refuses "²" and more than 4,300 digits, which
            # isdigit() accepts); past ten digits the cap applies anyway.
            if value.isascii() and value.isdigit() and (head := int(value[:10])) > 0:
                return MAX_WAIT_S if len(value) > 10 else min(head, MAX_WAIT_S)
    return None
