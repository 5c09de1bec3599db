"""``taskmesh llm-sim``: the simulator as a process of its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys

import uvloop

from .options import OptionError, SimOptions
from .server import SimServer


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(raw)
    return value


def _default_port() -> int:
    """LLM_SIM_PORT (``SimulatorSettings``); a bad value exits with one line naming it."""
    from taskmesh.settings import SimulatorSettings, load_settings

    return load_settings(SimulatorSettings).llm_sim_port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskmesh llm-sim",
        description="Serve a deterministic OpenAI-compatible chat-completions API for "
        "taskmesh's parse-task prompts, with optional latency and injected faults. "
        "Options override the LLM_SIM_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument(
        "--port", type=_port, default=None, help="listen port (default LLM_SIM_PORT or 8089)"
    )
    parser.add_argument("--latency-ms", type=float, help="added latency per call")
    parser.add_argument("--jitter-ms", type=float, help="latency varies by up to ± this much")
    parser.add_argument("--rate-429", type=float, help="fraction of calls answered 429")
    parser.add_argument("--rate-500", type=float, help="fraction of calls answered 500")
    parser.add_argument(
        "--rate-timeout", type=float, help="fraction of calls that hang past the client's timeout"
    )
    parser.add_argument(
        "--rate-malformed", type=float, help="fraction of calls answered with malformed JSON"
    )
    parser.add_argument("--timeout-hang-s", type=float, help="how long a hanging call hangs")
    parser.add_argument("--seed", type=int, help="seed of the fault and jitter draws")
    parser.add_argument(
        "--rate-limit-window-s",
        type=float,
        help="answer 429 with Retry-After to every call within this many seconds of the first",
    )
    parser.add_argument(
        "--hold",
        action="store_true",
        default=None,
        help='start with calls held at the gate until POST /sim/gate {"open": true}',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = SimOptions.from_env()
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(SimOptions)
        if getattr(args, f.name, None) is not None
    }
    try:
        options = dataclasses.replace(options, **overrides)
    except OptionError as exc:
        parser.error(f"--{exc.name.replace('_', '-')}: {exc}")
    port = args.port if args.port is not None else _default_port()
    try:
        # The event loop the services run on (launcher.service): cheaper per call.
        uvloop.run(_serve(options, args.host, port))
    except OSError as exc:
        print(f"taskmesh llm-sim: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(options: SimOptions, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with SimServer(options, host=host, port=port) as server:
        print(f"taskmesh llm-sim: serving {server.base_url}", file=sys.stderr, flush=True)
        await stop.wait()
    print("taskmesh llm-sim: stopped", file=sys.stderr, flush=True)
