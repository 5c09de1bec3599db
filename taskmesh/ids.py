"""Random ids: version 4 UUIDs as text, so ids reveal neither order nor volume."""

from __future__ import annotations

import os
import re

#: The variant nibble of RFC 9562 (``10xx``) for each random hex digit: the two low bits
#: kept, the two high ones set to ``10``, as ``uuid.UUID(version=4)`` sets them.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
#: A UUID's 36-character text form, any version, either case (RFC 9562 §4).
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID in its 36-character text form (the form of every id
    taskmesh makes; compare it lowercased, as they are stored)."""
    return _UUID_TEXT.fullmatch(value) is not None


def new_uuid4() -> str:
    """A new random (version 4) UUID in its 36-character text form, as
    ``str(uuid.uuid4())`` gives it (122 random bits from ``os.urandom``), formatted
    straight from the hex digits: a third of ``uuid.UUID``'s CPU (Tasks' row ids, five
    per job; the gateway's request ids, one per request)."""
    return _format(os.urandom(16).hex())


def new_uuid4s(n: int) -> list[str]:
    """``n`` ids as :func:`new_uuid4` makes them, from one ``os.urandom`` call (a task and
    its subtasks, a batch's jobs): one system call instead of ``n``."""
    h = os.urandom(16 * n).hex()
    return [_format(h[i : i + 32]) for i in range(0, 32 * n, 32)]


def _format(h: str) -> str:
    """32 random hex digits as a version-4 UUID's text (version and variant set)."""
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
