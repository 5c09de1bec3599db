"""Context variables set for a block stay correct, and closing the block from another
context (an async generator finalised by the loop, as gRPC does with a server stream the
client left) neither raises nor leaks the value."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

from taskmesh.scoped import scoped

VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("test_scoped", default=None)


def test_the_value_holds_inside_the_block_and_is_restored_after() -> None:
    with scoped(VAR, "outer"):
        with scoped(VAR, "inner"):
            assert VAR.get() == "inner"
        assert VAR.get() == "outer"
    assert VAR.get() is None


async def test_a_generator_closed_from_another_context_raises_nothing() -> None:
    seen: list[str | None] = []

    async def stream() -> AsyncIterator[int]:
        with scoped(VAR, "stream"):
            seen.append(VAR.get())
            yield 1
            yield 2

    gen = stream()
    # The first item is produced in a copy of this context ...
    first = await asyncio.create_task(anext(gen))
    # ... and the generator is closed from another task (another context copy), as the
    # loop's async-generator finaliser does; without the guard reset() raises ValueError.
    await asyncio.create_task(gen.aclose())
    assert first == 1
    assert seen == ["stream"]
    assert VAR.get() is None
