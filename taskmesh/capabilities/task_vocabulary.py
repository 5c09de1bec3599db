"""The categories and priority levels a parse-task job chooses from by default, read by
the capability's config (``parse_task.config``) and by the gateway's query validation
(``gateway.schemas``: ``GET /api/v1/tasks?category=…&priorityLevel=…``), so a filter the
gateway accepts is a value a task can hold. A module of its own, free of the capability's
handler, so the gateway imports no LLM client.

Source: SPEC §10 (the config's categories, and its priority levels with score ranges)."""

from __future__ import annotations

DEFAULT_CATEGORIES: tuple[str, ...] = ("work", "personal", "health", "finance", "errand")
#: Name, lowest score, highest score.
DEFAULT_LEVELS: tuple[tuple[str, int, int], ...] = (
    ("low", 0, 3),
    ("medium", 4, 6),
    ("high", 7, 8),
    ("critical", 9, 10),
)
