"""Types of the CLI's numeric options: a value out of range is a usage error (exit 2,
argparse's message naming the option), not a run that misbehaves later (``--timeout -1``
gave up at once; ``0`` meant "the default" to one command and "no time" to another)."""

from __future__ import annotations

import argparse
import math


def positive_seconds(text: str) -> float:
    """A duration in seconds: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of seconds above 0")
    return value


def positive_int(text: str) -> int:
    """A count of at least one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return value
