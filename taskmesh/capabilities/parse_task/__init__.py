"""parse-task: one sentence in, a structured task out (SPEC §10)."""

from .config import default_config
from .handler import (
    InvalidOutputError,
    LLMRequestError,
    LLMTransientError,
    ParseTaskError,
    ParseTaskResult,
    run_parse_task,
)
from .validation import validate_input

__all__ = [
    "InvalidOutputError",
    "LLMRequestError",
    "LLMTransientError",
    "ParseTaskError",
    "ParseTaskResult",
    "default_config",
    "run_parse_task",
    "validate_input",
]
