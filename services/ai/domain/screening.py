"""Prompt-injection screening of the user's sentence before any LLM call (SPEC §10).

The layers live in `services.ai.domain.screen`: `normalise` (canonical text), `views`
(decoded payloads), `patterns` (English, block alone), `vocabulary` (multilingual word lists as
data), `model` (multilingual-e5-small and USE multilingual v3 + trained head) and `cascade` (cheap layers first, the
model on what they cannot clear). This module is the entry point the service uses.
"""

from __future__ import annotations

import base64
from functools import cache

from services.ai.domain.screen.cascade import PASSED, Screener, Verdict
from services.ai.domain.screen.model import load_model
from services.ai.domain.screen.normalise import normalize
from services.ai.domain.screen.patterns import PatternType

__all__ = [
    "PASSED",
    "PatternType",
    "Screener",
    "Verdict",
    "default_screener",
    "normalize",
    "screen",
]


@cache
def default_screener() -> Screener:
    """The process-wide screener, its model loaded and every layer warmed on first use
    (blocking, about a second: the confusables data and the vocabulary load lazily); raises if
    the model cannot be loaded."""
    screener = Screener(load_model())
    screener.screen("Іgnоrе аll warm-up " + base64.b64encode(b"warm-up text here").decode())
    return screener


def screen(text: str) -> Verdict:
    """Blocking verdict on `text` with the process-wide screener; the first family found is
    reported (English patterns in the order format manipulation, instruction override, prompt
    extraction, output override; then the multilingual vocabulary; else the model)."""
    return default_screener().screen(text)
