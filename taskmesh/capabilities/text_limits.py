"""The limits on a parse-task sentence, read by the gateway's edge validation
(``gateway.schemas``) and by the capability's own (``parse_task.validation``),
so the 400 at the edge and the one from the AI service agree. A module of its
own, free of the capability's handler, so the gateway imports no LLM client.

Source: SPEC §5 (``naturalLanguage``: trimmed, 1–2000 characters, any script)."""

from __future__ import annotations

#: Characters of the trimmed sentence, at most.
MAX_TEXT_CHARS = 2000
#: Characters of the trimmed sentence, at least.
MIN_TEXT_CHARS = 1
#: The only control characters a sentence may contain once CRLF and CR are read as LF:
#: line breaks and tab.
ALLOWED_CONTROLS = frozenset("\n\t")
#: Line breaks as clients send them before that normalisation (browsers' text areas and
#: Windows send CRLF).
LINE_BREAKS = frozenset("\r\n")
