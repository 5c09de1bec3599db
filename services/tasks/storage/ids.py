"""Row ids: random UUIDs as text, so ids reveal neither order nor volume."""

from __future__ import annotations

from taskmesh.ids import new_uuid4, new_uuid4s

#: A new random (version 4) UUID in its canonical text form (``taskmesh.ids.new_uuid4``).
new_id = new_uuid4
#: ``n`` new ids from one ``os.urandom`` call (``taskmesh.ids.new_uuid4s``).
new_ids = new_uuid4s
