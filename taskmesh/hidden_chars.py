"""Characters that show nothing, or change what the characters around them show (Unicode
TR #36 §2.2: bidi controls reorder a string, zero-width characters conceal or pad it).

One place for the sets the project's text rules are made of: webhook URLs
(``taskmesh.webhook_urls``), user names (``services.tasks.domain.users``), parse-task titles
(``parse_task.schema``) and blank sentences (``capabilities.text_limits``)."""

from __future__ import annotations

import unicodedata

#: Unicode categories of characters that are not seen: controls (Cc), format characters (Cf:
#: bidi embeddings, overrides and isolates, zero-width space and joiners, soft hyphen, byte
#: order mark, tag characters) and the line and paragraph separators (Zl, Zp).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
#: The zero-width non-joiner and joiner: format characters that are part of how words are
#: spelt between two visible characters (Unicode §23.2: Persian "می‌خواهم", Indic conjuncts,
#: emoji ZWJ sequences).
JOINERS = frozenset("\u200c\u200d")
#: Tag characters (U+E0000-U+E007F, all Cf): they mirror ASCII, so they can spell text no one
#: sees; in an emoji tag sequence they pick a flag (UTS #51 §2.3).
TAG_CHARACTERS = range(0xE0000, 0xE0080)


def hidden(char: str) -> bool:
    """Whether ``char`` (one character) is of a `HIDDEN_CATEGORIES` category."""
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def is_format(char: str) -> bool:
    """Whether ``char`` (one character) is a format character (Unicode category Cf)."""
    return unicodedata.category(char) == "Cf"
