"""Resource ids in paths. Jobs and tasks are named by UUIDs; anything else
cannot name one, so it is answered like an id that does not exist (404)."""

from __future__ import annotations

from taskmesh import errors
from taskmesh.ids import is_uuid


def resource_id(value: str, what: str) -> str:
    if not is_uuid(value):
        raise errors.NotFound(f"{what} not found.")
    return value.lower()
