"""Row ids: random UUIDs as text, so ids reveal neither order nor volume."""

from __future__ import annotations

from taskmesh.ids import new_uuid4

#: A new random (version 4) UUID in its canonical text form (``taskmesh.ids.new_uuid4``).
new_id = new_uuid4
