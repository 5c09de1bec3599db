"""``taskmesh``: run the services, manage users and dead letters, submit text.

Exit codes: 0 success, 1 failure, 2 usage (argparse) or bad configuration."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from launcher.arguments import positive_seconds

_MAINS = {
    "gateway": "gateway.main",
    "tasks": "services.tasks.main",
    "ai": "services.ai.main",
    "worker": "services.worker.main",
}


def _service(name: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        from launcher.service import run_service

        # Each main module names its settings class (SETTINGS) beside its run().
        main = importlib.import_module(_MAINS[name])
        return run_service(name, main.run, main.SETTINGS)

    return run


def _llm_sim(args: argparse.Namespace) -> int:
    from llm_sim import main as sim_main

    return sim_main(args.sim_args)


def _up(args: argparse.Namespace) -> int:
    from launcher.up import up

    return up()


def _users(args: argparse.Namespace) -> int:
    from launcher import admin

    return admin.users(args)


def _dlq(args: argparse.Namespace) -> int:
    from launcher import dlq

    return dlq.run(args)


def _migrate(args: argparse.Namespace) -> int:
    from launcher import admin

    return admin.migrate(args)


def _ledger(args: argparse.Namespace) -> int:
    from launcher import admin

    return admin.ledger_check(args)


def _submit(args: argparse.Namespace) -> int:
    from launcher import submit

    return submit.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taskmesh", description="Async LLM job pipeline: one sentence in, a task out."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "up", help="run every service locally (and the LLM simulator when no OPENAI_API_KEY)"
    ).set_defaults(func=_up)
    for name, text in (
        ("gateway", "the HTTP gateway"),
        ("tasks", "the Tasks gRPC service (applies database migrations)"),
        ("ai", "the AI gRPC service (validates, screens, queues)"),
        ("worker", "a worker consuming jobs"),
    ):
        sub.add_parser(name, help=f"run {text}").set_defaults(func=_service(name))
    sim = sub.add_parser(
        "llm-sim",
        help="run the OpenAI-compatible LLM simulator",
        add_help=False,
        prefix_chars="\0",
    )
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)
    sim.set_defaults(func=_llm_sim)

    sub.add_parser(
        "migrate", help="apply pending database migrations and exit (DATABASE_URL)"
    ).set_defaults(func=_migrate)

    users = sub.add_parser("users", help="manage users and API keys")
    users_sub = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = users_sub.add_parser("create", help="create a user; prints the API key once")
    create.add_argument("name")
    users_sub.add_parser("list", help="one line per key: name, user id, key prefix, state, created")
    revoke = users_sub.add_parser("revoke", help="revoke a key by a unique prefix (>= 8 chars)")
    revoke.add_argument("prefix")
    users.set_defaults(func=_users)

    dlq = sub.add_parser("dlq", help="inspect and replay dead-lettered jobs")
    dlq_sub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    dlq_sub.add_parser("list", help="one line per dead-lettered message")
    replay = dlq_sub.add_parser("replay", help="put dead-lettered jobs back on the queue")
    replay.add_argument("ids", nargs="*", metavar="ID", help="message ids (job ids)")
    replay.add_argument("--all", action="store_true", help="replay every message")
    dlq.set_defaults(func=_dlq)

    ledger = sub.add_parser("ledger", help="token ledger tools")
    ledger_sub = ledger.add_subparsers(dest="action", required=True, metavar="ACTION")
    ledger_sub.add_parser(
        "check", help="verify used/reserved of every window against the jobs' reservations"
    )
    ledger.set_defaults(func=_ledger)

    from launcher import jobs

    jobs.add_parser(sub)

    submit = sub.add_parser("submit", help="submit a sentence and follow the job")
    submit.add_argument("text")
    submit.add_argument(
        "--json",
        action="store_true",
        help="print the job as JSON on stdout; an error too, as one JSON object "
        '(the problem document, or {"error": ...})',
    )
    submit.add_argument(
        "--timeout",
        type=positive_seconds,
        default=120.0,
        help="seconds to follow the job, above 0 (120)",
    )
    submit.set_defaults(func=_submit)
    __import__("launcher.evaluate", fromlist=["register"]).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 1
