"""Submits the peer's burst: ``--clients`` concurrent clients each ``kiq`` their
share of ``--jobs`` jobs through one broker connection, as an application
would. Prints ``ready`` once connected, waits for a line on stdin, submits,
prints ``done``, exits when stdin closes: connecting is outside the timed window, as for taskmesh.

Usage: python -m bench_peer.producer --jobs N [--clients C] [--prefix P] [--first K]
       [--sentences varied|one] (environment as bench_peer.app; sentences: bench_peer.sentences)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvloop

from bench_peer.app import broker, run_job
from bench_peer.sentences import sentence


async def submit(jobs: int, clients: int, prefix: str, first: int, mix: str) -> None:
    await broker.startup()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    per = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]

    async def client(index: int, count: int) -> None:
        for n in range(count):
            await run_job.kiq(f"{prefix}{index}-{n}", sentence(first + index + n * clients, mix))

    await asyncio.gather(*(client(i, n) for i, n in enumerate(per)))
    print("done", flush=True)
    # Alive until told (stdin closed), so its CPU can still be read from /proc.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--prefix", default="", help="of the job ids, unique per burst")
    parser.add_argument("--first", type=int, default=0, help="number of the burst's first sentence")
    parser.add_argument("--sentences", choices=("varied", "one"), default="varied")
    args = parser.parse_args()
    # uvloop, as taskiq's worker uses when it is installed (it is: Sanic needs it).
    uvloop.run(submit(args.jobs, args.clients, args.prefix, args.first, args.sentences))


if __name__ == "__main__":
    main()
