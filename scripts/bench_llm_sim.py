"""The simulator's CPU per call, for each kind of call the benchmark sends it.

    .venv/bin/python scripts/bench_llm_sim.py [--calls 2000] [--rounds 3] [--concurrency 32]
        [--variant NAME=DIR ...] [--bodies bodies.json]

First the request bodies and headers are captured as the clients send them: the worker's
core and subtasks calls (``run_parse_task`` through :class:`LLMClient`, the worker's
transport) and the peer's call (the ``openai`` SDK on its aiohttp transport, with the peer's
prompt, ``scripts/bench_peer/app.py``), one distinct sentence each
(``scripts/bench_peer/sentences.py``). Then each variant's simulator runs as a child process
(``python -m llm_sim``, latency 0 unless ``--latency-ms``; ``--variant base=/tmp/base`` puts ``/tmp/base`` first on its
``PYTHONPATH``, so ``llm_sim`` is imported from there) and one kind of call at a time is
replayed to it over keep-alive connections (``job``: each sentence's core then subtasks
call, as a taskmesh job sends them, figure per job); the child's CPU time (the sum of its
threads' ``/proc/<pid>/task/*/schedstat`` run time, ns) over the burst divided by the calls
is the figure. ``--variant`` wants a directory holding only ``llm_sim`` (e.g. ``git archive
<commit> llm_sim | tar -x -C /tmp/base``): the child runs there. Variants take turns within each round; the medians over the rounds are printed.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from scripts.bench_peer.sentences import sentence  # noqa: E402

KINDS = ("core", "subtasks", "peer")
#: A taskmesh job's two calls (core, then subtasks, of each sentence in turn), as the worker
#: sends them together: the figure is per job (two calls), not per call.
JOB = "job"
#: Headers aiohttp sets on its own when replaying (framing, not content).
_FRAMING = frozenset({"host", "content-length", "connection", "transfer-encoding"})


async def _capture(calls: int) -> dict[str, list[dict[str, Any]]]:
    """``calls`` bodies (text) and headers of each kind, as the clients send them."""
    import openai

    from llm_sim import SimOptions, SimServer
    from llm_sim.engine import classify_request
    from llm_sim.http import Request
    from scripts.bench_peer import app as peer
    from taskmesh.capabilities.llm_client import LLMClient
    from taskmesh.capabilities.parse_task import run_parse_task, validate_input
    from taskmesh.jobs.v1 import jobs_pb2

    captured: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    peer_call = False
    original = SimServer._complete

    async def recording(self: SimServer, request: Request) -> Any:
        body = request.body.decode()
        kind = "peer" if peer_call else classify_request(json.loads(body))
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in request.headers
            if k.decode("latin-1").lower() not in _FRAMING
        }
        captured[kind].append({"body": body, "headers": headers})
        return await original(self, request)

    SimServer._complete = recording  # type: ignore[method-assign]
    try:
        async with SimServer(SimOptions(), port=0) as server:
            async with LLMClient(
                api_key="bench", base_url=server.base_url, timeout_s=30, pool_size=8
            ) as llm:
                now = datetime.now(UTC).replace(microsecond=0)
                for n in range(calls):
                    msg = jobs_pb2.ParseTaskInput(natural_language=sentence(n))
                    msg.reference_time.FromDatetime(now)
                    await run_parse_task(llm, "gpt-4.1-mini", validate_input(msg))
            peer_call = True
            sdk = openai.AsyncOpenAI(
                api_key="bench",
                base_url=server.base_url,
                http_client=openai.DefaultAioHttpClient(timeout=30),
            )
            async with sdk:
                for n in range(calls):
                    await sdk.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[
                            {"role": "system", "content": peer.SYSTEM},
                            {"role": "user", "content": sentence(n)},
                        ],
                        response_format={"type": "json_object"},
                        temperature=0,
                    )
    finally:
        SimServer._complete = original  # type: ignore[method-assign]
    return captured


def _cpu_ns(pid: int) -> int:
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total


class _Sim:
    """One simulator child process of a variant, on ``port``."""

    def __init__(self, name: str, path: str, port: int, latency_ms: float) -> None:
        env = dict(os.environ)
        if path != ".":
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_sim", "--port", str(port), "--latency-ms", str(latency_ms)],
            env=env,
            # `-m` puts the working directory first on sys.path.
            cwd=ROOT if path == "." else path,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        if "serving" not in line:
            raise RuntimeError(f"{name}: simulator did not start: {line}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def _burst(sim: _Sim, calls: list[dict[str, Any]], concurrency: int, cold: bool) -> float:
    """Seconds of the simulator's CPU per call over one burst of ``calls`` (``cold``: the
    connections are opened within the burst, as in a benchmark's first burst)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        queue = iter(calls)

        async def one(call: dict[str, Any]) -> None:
            async with http.post(sim.url, data=call["body"], headers=call["headers"]) as r:
                r.raise_for_status()
                await r.read()

        async def lane() -> None:
            for call in queue:
                await one(call)

        if not cold:
            # Warm-up: open the connections and the simulator's first-call paths.
            await asyncio.gather(*(one(call) for call in calls[:concurrency]))
            time.sleep(0.05)
        before = _cpu_ns(sim.proc.pid)
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return (_cpu_ns(sim.proc.pid) - before) / 1e9 / len(calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind per burst")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--latency-ms", type=float, default=0, help="the simulator's latency")
    parser.add_argument(
        "--cold", action="store_true", help="open the connections within each measured burst"
    )
    parser.add_argument("--port", type=int, default=22100, help="first simulator port")
    parser.add_argument(
        "--variant",
        action="append",
        metavar="NAME=DIR",
        help="a simulator whose llm_sim is imported from DIR ('.' = this tree); repeatable",
    )
    parser.add_argument(
        "--bodies", type=Path, help="captured bodies: read if present, else written"
    )
    parser.add_argument("--kinds", default=",".join((*KINDS, JOB)), help="bursts, in order")
    args = parser.parse_args()
    if args.bodies and args.bodies.exists():
        captured = json.loads(args.bodies.read_text())
    else:
        captured = asyncio.run(_capture(args.calls))
        if args.bodies:
            args.bodies.write_text(json.dumps(captured))
    kinds = args.kinds.split(",")
    captured[JOB] = [
        call for pair in zip(captured["core"], captured["subtasks"], strict=True) for call in pair
    ]
    variants = [v.split("=", 1) for v in args.variant or ["new=."]]
    figures: dict[tuple[str, str], list[float]] = {}
    sims = [
        _Sim(name, path, args.port + i, args.latency_ms) for i, (name, path) in enumerate(variants)
    ]
    try:
        for r in range(args.rounds):
            for kind in kinds:
                # Alternate which variant goes first, so drift in load favours neither.
                for sim in sims if r % 2 == 0 else sims[::-1]:
                    calls = captured[kind][: args.calls * (2 if kind == JOB else 1)]
                    cpu = asyncio.run(_burst(sim, calls, args.concurrency, args.cold))
                    cpu *= 2 if kind == JOB else 1
                    figures.setdefault((sim.name, kind), []).append(cpu)
                    print(
                        f"round {r + 1} {sim.name:8} {kind:9} {cpu * 1e6:7.1f} µs/call", flush=True
                    )
    finally:
        for sim in sims:
            sim.stop()
    print(f"medians, µs of simulator CPU per call ({JOB}: per core + subtasks pair):")
    for kind in kinds:
        row = "  ".join(
            f"{name} {statistics.median(figures[(name, kind)]) * 1e6:7.1f}" for name, _ in variants
        )
        print(f"  {kind:9} {row}")


if __name__ == "__main__":
    main()
