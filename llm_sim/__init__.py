"""An OpenAI-compatible chat-completions server that answers the parse-task prompts
deterministically, so the whole pipeline runs and is tested without a key (SPEC §11)."""

from .cli import main
from .options import SimOptions
from .server import SimServer

__all__ = ["SimOptions", "SimServer", "main"]
