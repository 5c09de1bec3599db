"""The limits on a parse-task sentence, read by the gateway's edge validation
(``gateway.schemas``) and by the capability's own (``parse_task.validation``),
so the 400 at the edge and the one from the AI service agree. A module of its
own, free of the capability's handler, so the gateway imports no LLM client.

Source: SPEC §5 (``naturalLanguage``: trimmed, 1–2000 characters, any script)."""

from __future__ import annotations

from taskmesh.hidden_chars import TAG_CHARACTERS, is_format

#: Characters of the trimmed sentence, at most.
MAX_TEXT_CHARS = 2000
#: Characters of the trimmed sentence, at least.
MIN_TEXT_CHARS = 1
#: The only control characters a sentence may contain once CRLF and CR are read as LF:
#: line breaks and tab.
ALLOWED_CONTROLS = frozenset("\n\t")


def is_blank(text: str) -> bool:
    """Whether ``text`` holds nothing a person could read: only whitespace and format characters
    (zero-width space, word joiner, byte order mark, direction marks, the Mongolian vowel
    separator). Tag characters (U+E0000-U+E007F) are not blank: they can spell ASCII text no one
    sees, which the injection screen reads. Control characters are not either: the capability
    refuses them by name (``parse_task.validation``)."""
    for char in text:
        if char.isspace():
            continue
        if is_format(char) and ord(char) not in TAG_CHARACTERS:
            continue
        return False
    return True
