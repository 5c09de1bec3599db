"""``taskmesh users …`` and ``taskmesh ledger check``: operator commands answered by the
Tasks service's AdminService (``launcher.tasks_rpc``), so they need Tasks running at
TASKS_GRPC_ADDR and the internal token; ``taskmesh migrate`` runs the Tasks service's
own migration step."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC

from launcher.tasks_rpc import Refused, call_admin, target
from taskmesh.admin.v1 import admin_pb2


def _fail(exc: Refused) -> int:
    print(f"taskmesh: {exc.message}", file=sys.stderr)
    return exc.exit_code


def _key_line(key: admin_pb2.UserKey) -> str:
    created = key.create_time.ToDatetime(UTC)
    state = (
        f"revoked {key.revoke_time.ToDatetime(UTC):%Y-%m-%d}"
        if key.HasField("revoke_time")
        else "active"
    )
    return (
        f"{key.user_name}\t{key.user_id}\t{key.key_prefix}…\t{state}\t{created:%Y-%m-%dT%H:%M:%SZ}"
    )


async def _users(args: argparse.Namespace) -> int:
    where = target()
    if args.action == "create":
        created = await call_admin(
            where,
            lambda stub: stub.CreateUser(
                admin_pb2.CreateUserRequest(name=args.name), **where.options()
            ),
        )
        # The key alone on stdout, so scripts can capture it; it is not stored.
        print(created.api_key)
        print(f"created user {args.name!r}; the key above is shown only once", file=sys.stderr)
    elif args.action == "list":
        listed = await call_admin(
            where, lambda stub: stub.ListUsers(admin_pb2.ListUsersRequest(), **where.options())
        )
        # The user id is what the gRPC API (grpcurl) takes as user_id.
        print("name\tuser id\tkey prefix\tstate\tcreated", file=sys.stderr)
        for key in listed.keys:
            print(_key_line(key))
    else:
        await call_admin(
            where,
            lambda stub: stub.RevokeKey(
                admin_pb2.RevokeKeyRequest(key_prefix=args.prefix), **where.options()
            ),
        )
        print("revoked", file=sys.stderr)
    return 0


def users(args: argparse.Namespace) -> int:
    """``users create|list|revoke``: 0 done; 1 refused (the service's reason, or Tasks
    not answering) and 2 without an internal token, one line on stderr either way."""
    try:
        return asyncio.run(_users(args))
    except Refused as exc:
        return _fail(exc)


async def _ledger() -> int:
    where = target()
    report = await call_admin(
        where, lambda stub: stub.CheckLedger(admin_pb2.CheckLedgerRequest(), **where.options())
    )
    for w in report.window_mismatches:
        print(
            f"MISMATCH user={w.user_id} window={w.window_start} used={w.used} "
            f"(jobs charged {w.charged}) reserved={w.reserved} (open reservations {w.open_reserved})"
        )
    print(
        f"ledger: {report.windows_checked} windows checked, "
        f"{len(report.window_mismatches)} mismatched"
    )
    # Per job (SPEC §8 "every LLM call is charged"): charged = Σ its recorded calls.
    for j in report.job_mismatches:
        print(f"MISMATCH job={j.job_id} charged={j.charged} (recorded LLM calls {j.recorded})")
    print(
        f"ledger: {len(report.job_mismatches)} jobs whose charge differs "
        f"from their recorded LLM calls"
    )
    return 1 if report.window_mismatches or report.job_mismatches else 0


def ledger_check(_: argparse.Namespace) -> int:
    """``ledger check``: 0 when every window and job balances, 1 when one does not
    (each named on stdout) or the check could not run, 2 without an internal token."""
    try:
        return asyncio.run(_ledger())
    except Refused as exc:
        return _fail(exc)


def migrate(_: argparse.Namespace) -> int:
    """Applies pending database migrations and exits (0 when the schema is current).

    What ``taskmesh tasks`` does at start, alone (``services.tasks.main.migrate``): a
    deployment runs it once (the Kubernetes migration Job) before new Tasks replicas
    start."""
    from services.tasks.main import migrate as migrate_tasks
    from taskmesh.settings import DatabaseSettings, load_settings

    try:
        asyncio.run(migrate_tasks(load_settings(DatabaseSettings)))
    except Exception as exc:  # noqa: BLE001 - one line, no driver message with addresses
        print(f"taskmesh migrate: failed ({type(exc).__name__})", file=sys.stderr)
        return 1
    print("database schema is current", file=sys.stderr)
    return 0
