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
#: SPEC §4: any key of 16-200 printable ASCII characters is valid; the ``tm_``
#: prefix is only what taskmesh generates, never required of a configured key.
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 200


def new_api_key() -> str:
    """A new key: ``tm_`` + 43 URL-safe characters (46 in all)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def printable_ascii(key: str) -> bool:
    """True when every character of ``key`` is printable ASCII, space included (SPEC §4's
    characters for a key): what an ``Authorization`` header can carry as it is."""
    return all(" " <= c <= "~" for c in key)


def valid_key(key: str) -> bool:
    """True for 16-200 printable ASCII characters (space included), SPEC §4: what Tasks
    accepts as a configured key."""
    return MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH and printable_ascii(key)
