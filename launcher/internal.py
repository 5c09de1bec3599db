"""The internal token for operator commands that call the services' gRPC APIs.

``taskmesh up`` keeps the token it generates in ``.taskmesh/internal-token``
(mode 0600, SPEC §3), so commands run from the same directory work without
exporting it; ``INTERNAL_AUTH_TOKEN`` wins when set."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

STATE_DIR = Path(".taskmesh")
TOKEN_FILE = STATE_DIR / "internal-token"


class NoToken(Exception):
    """Neither INTERNAL_AUTH_TOKEN nor the token file is there."""


def read_token(path: Path = TOKEN_FILE) -> str:
    """INTERNAL_AUTH_TOKEN, else the token ``taskmesh up`` saved; raises NoToken."""
    token = os.environ.get("INTERNAL_AUTH_TOKEN", "").strip()
    if token:
        return token
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if not token:
        raise NoToken(f"set INTERNAL_AUTH_TOKEN, or run this where `taskmesh up` keeps {path}")
    return token


def saved_or_new_token(path: Path = TOKEN_FILE) -> str:
    """The token kept at ``path``, or a new 256-bit one written there with mode
    0600 (owner only: it opens every internal RPC)."""
    try:
        token = path.read_text().strip()
    except OSError:
        token = ""
    if token:
        path.chmod(0o600)
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Created 0600 from the start: never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)
    return token
