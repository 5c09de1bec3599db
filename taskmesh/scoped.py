"""Context variables set for the length of a block, safely inside async generators."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def scoped(var: contextvars.ContextVar[T], value: T) -> Iterator[None]:
    """Sets ``var`` to ``value`` inside the block and restores it after.

    An async generator that gRPC finalises from another context (a server stream the
    client left, closed by the event loop's async-generator hook) cannot reset a token
    of its own context: ``ContextVar.reset`` raises ValueError there. That context ends
    with the generator, so nothing leaks and the reset is skipped."""
    token = var.set(value)
    try:
        yield
    finally:
        try:
            var.reset(token)
        except ValueError:
            pass
