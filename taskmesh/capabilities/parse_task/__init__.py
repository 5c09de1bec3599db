"""parse-task: one sentence in, a structured task out (SPEC §10)."""

from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    CapabilityError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
)

from .config import default_config
from .handler import ParseTaskError, ParseTaskResult, run_parse_task
from .validation import validate_input

__all__ = [
    "BudgetExhaustedError",
    "CapabilityError",
    "InvalidOutputError",
    "LLMRejectedError",
    "LLMTransientError",
    "ParseTaskError",
    "ParseTaskResult",
    "default_config",
    "run_parse_task",
    "validate_input",
]
