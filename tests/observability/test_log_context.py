"""Log context (request id, job id) bound around a server stream."""

from __future__ import annotations

import asyncio
import contextvars

from taskmesh.logs import bind, request_id_var


async def test_a_stream_closed_from_another_context_ends_quietly() -> None:
    # gRPC closes a server stream the client left (an SSE follower that went away) from a
    # context of its own; the bound request id must not turn that into an error.
    async def stream():
        with bind(request_id="req-12345678", job_id="job-1"):
            while True:
                yield request_id_var.get()

    gen = stream()
    first = await asyncio.create_task(anext(gen), context=contextvars.Context())
    assert first == "req-12345678"
    await asyncio.create_task(gen.aclose(), context=contextvars.Context())
    assert request_id_var.get() is None
