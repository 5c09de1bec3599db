"""The accept section's paced load counts a request's wait from the time it was due: a
service that stalls shows its stall in the latencies of every request queued behind it
(no coordinated omission), and the schedule offers the rate asked for."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench  # noqa: E402

pytestmark = [pytest.mark.bench, pytest.mark.timeout(30)]

STALL_S = 0.5


async def serve(stall_s: float = 0.0) -> tuple[asyncio.Server, int, list[float]]:
    """A keep-alive HTTP server answering 202; the first request is held ``stall_s``."""
    arrivals: list[float] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                writer.close()
                return
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            arrivals.append(asyncio.get_running_loop().time())
            if len(arrivals) == 1 and stall_s:
                await asyncio.sleep(stall_s)  # the stall under test, not a synchronisation
            writer.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], arrivals


def test_a_stall_counts_in_every_request_due_during_it() -> None:
    async def run() -> tuple[int, list[float]]:
        server, port, _ = await serve(STALL_S)
        # One client, 20 requests a second for one second: requests 2.. fall due while the
        # first is held, and leave only once it is answered.
        async with server:
            return await bench.paced_load(port, "key", clients=1, rate=20, seconds=1.0)

    accepted, latencies = asyncio.run(run())
    assert accepted == len(latencies) == 20
    # The second request was due 50 ms after the first and could leave only after the stall.
    assert sorted(latencies, reverse=True)[1] >= STALL_S - 0.05


def test_the_schedule_offers_the_rate_asked_for() -> None:
    async def run() -> tuple[int, list[float], list[float]]:
        server, port, arrivals = await serve()
        async with server:
            accepted, latencies = await bench.paced_load(
                port, "key", clients=4, rate=40, seconds=1.0
            )
        return accepted, latencies, arrivals

    accepted, latencies, arrivals = asyncio.run(run())
    assert accepted == 40
    # Spread over the second, not sent at once: the last arrives most of a second after
    # the first.
    assert max(arrivals) - min(arrivals) >= 0.9
