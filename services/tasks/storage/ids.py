"""Row ids: random UUIDs as text, so ids reveal neither order nor volume."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A new random (version 4) UUID in its 36-character text form."""
    return str(uuid.uuid4())
