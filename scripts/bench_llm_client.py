"""Client CPU per LLM call: the SDK's chat-completions path against the lean transport.

    .venv/bin/python scripts/bench_llm_client.py [--runs 400] [--concurrency 32] [--rounds 1]

The simulator runs in a child process (latency 0), so this process's CPU time is the client's
alone: building the request, the HTTP exchange, reading the answer, and the parse-task
capability's own prompt rendering and validation (the same in both variants, so the difference
is the transport's). Each variant runs the same parse-task jobs (two calls each) through
``run_parse_task`` after a warm-up; ``sdk`` is ``openai.AsyncOpenAI`` on the SDK's aiohttp
transport (how the worker called before), ``session`` is :class:`LLMClient` through its aiohttp
session (what it uses behind a proxy), ``lean`` is :class:`LLMClient` through its own connection
pool. ``--rounds`` runs the variants in turns that many times and prints each variant's median.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from taskmesh.capabilities.llm_client import LLMClient  # noqa: E402
from taskmesh.capabilities.parse_task import run_parse_task, validate_input  # noqa: E402
from taskmesh.jobs.v1 import jobs_pb2  # noqa: E402

VARIANTS = ("sdk", "session", "lean")

SENTENCES = (
    "Submit Q2 report by next Friday",
    "Pay electricity bill tomorrow",
    "Book a dentist appointment for next week",
    "Renew the car insurance before the end of the month",
)


def _serve(conn: Connection) -> None:
    from llm_sim import SimOptions, SimServer

    async def main() -> None:
        async with SimServer(SimOptions(), port=0) as server:
            conn.send(server.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    asyncio.run(main())


def _inputs() -> list[jobs_pb2.ParseTaskInput]:
    out = []
    for text in SENTENCES:
        msg = jobs_pb2.ParseTaskInput(natural_language=text)
        msg.reference_time.FromDatetime(datetime(2024, 1, 15, 12, tzinfo=UTC))
        out.append(validate_input(msg))
    return out


async def _measure(client: openai.AsyncOpenAI, runs: int, concurrency: int) -> tuple[float, int]:
    inputs = _inputs()
    gate = asyncio.Semaphore(concurrency)
    calls = 0

    async def one(i: int) -> None:
        nonlocal calls
        async with gate:
            result = await run_parse_task(client, "bench", inputs[i % len(inputs)])
            calls += result.usage.llm_calls

    await asyncio.gather(*(one(i) for i in range(min(50, runs))))  # warm-up: pools, caches
    calls = 0
    started = time.process_time()
    await asyncio.gather(*(one(i) for i in range(runs)))
    return time.process_time() - started, calls


async def _variant(name: str, base_url: str, runs: int, concurrency: int) -> float:
    client: openai.AsyncOpenAI
    if name == "sdk":
        client = openai.AsyncOpenAI(
            api_key="bench",
            base_url=base_url,
            timeout=30,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=30),
        )
    else:
        client = LLMClient(
            api_key="bench", base_url=base_url, timeout_s=30, pool_size=2 * concurrency
        )
        client.transport.via_session = name == "session"
    async with client:
        cpu, calls = await _measure(client, runs, concurrency)
    print(
        f"{name:7} jobs={runs} calls={calls}  client CPU {1000 * cpu / calls:6.3f} ms/call"
        f"  {1000 * cpu / runs:6.3f} ms/job",
        flush=True,
    )
    return 1000 * cpu / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="parse-task jobs per variant")
    parser.add_argument("--concurrency", type=int, default=32, help="jobs in flight")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="a variant (repeatable)")
    parser.add_argument("--rounds", type=int, default=1, help="turns of every variant")
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    sim = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,))
    sim.start()
    try:
        base_url = ours.recv()
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        figures: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name in args.only or VARIANTS:
                cpu = runner(_variant(name, base_url, args.runs, args.concurrency))
                figures.setdefault(name, []).append(cpu)
        if args.rounds > 1:
            for name, values in figures.items():
                print(f"{name:7} median of {len(values)}: {statistics.median(values):6.3f} ms/call")
    finally:
        ours.send("stop")
        sim.join(30)


if __name__ == "__main__":
    main()
