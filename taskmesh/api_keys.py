"""The API keys taskmesh generates: ``tm_`` and 256 random bits, URL-safe base64.

Shared by the Tasks service (``users create``) and the launcher (the development key
``taskmesh up`` makes before Tasks runs). SPEC §4 accepts any 16-200 printable ASCII
characters as a key; the prefix only marks the ones generated here. 256 bits: README,
"Security" ("API keys are 256-bit random strings")."""

from __future__ import annotations

import secrets

KEY_PREFIX = "tm_"
#: Random bytes per key: 32 (256 bits).
KEY_BYTES = 32


def new_api_key() -> str:
    """A new key: ``tm_`` + 43 URL-safe characters (46 in all)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
