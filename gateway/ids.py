"""Resource ids in paths. Jobs and tasks are named by UUIDs; anything else
cannot name one, so it is answered like an id that does not exist (404)."""

from __future__ import annotations

import re

from taskmesh import errors

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def resource_id(value: str, what: str) -> str:
    if not _UUID.match(value):
        raise errors.NotFound(f"{what} not found.")
    return value.lower()
