"""Operator commands that work on the Tasks database directly."""

from __future__ import annotations

import argparse
import asyncio
import sys

from taskmesh import errors
from taskmesh.settings import load_settings


async def _with_store(action):  # type: ignore[no-untyped-def]
    from services.tasks.storage.repository import Store

    store = Store(load_settings().database_url)
    try:
        await store.open()
        return await action(store)
    finally:
        await store.close()


def users(args: argparse.Namespace) -> int:
    from services.tasks.domain.users import UserService

    async def act(store) -> int:  # type: ignore[no-untyped-def]
        service = UserService(store)
        if args.action == "create":
            _, key = await service.create(args.name)
            # The key alone on stdout, so scripts can capture it; it is not stored.
            print(key)
            print(f"created user {args.name!r}; the key above is shown only once", file=sys.stderr)
        elif args.action == "list":
            # The user id is what the gRPC API (grpcurl) takes as user_id.
            print("name\tuser id\tkey prefix\tstate\tcreated", file=sys.stderr)
            for row in await service.list():
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                print(
                    f"{row.user_name}\t{row.user_id}\t{row.prefix}…\t{state}\t"
                    f"{row.created_at:%Y-%m-%dT%H:%M:%SZ}"
                )
        else:
            await service.revoke(args.prefix)
            print("revoked", file=sys.stderr)
        return 0

    try:
        return asyncio.run(_with_store(act))
    except errors.TaskmeshError as exc:
        print(f"taskmesh: {exc.message}", file=sys.stderr)
        return 1


def ledger_check(_: argparse.Namespace) -> int:
    async def act(store) -> int:  # type: ignore[no-untyped-def]
        async with store.read() as tx:
            rows = await tx.ledger_rows()
            jobs = await tx.ledger_job_mismatches()
        bad = 0
        for user_id, window, used, reserved, charged, open_ in rows:
            if used != charged or reserved != open_ or used < 0 or reserved < 0:
                bad += 1
                print(
                    f"MISMATCH user={user_id} window={window} used={used} (jobs charged {charged}) "
                    f"reserved={reserved} (open reservations {open_})"
                )
        print(f"ledger: {len(rows)} windows checked, {bad} mismatched")
        # Per job (SPEC §8 "every LLM call is charged"): charged = Σ its recorded calls.
        for job_id, charged, recorded in jobs:
            print(f"MISMATCH job={job_id} charged={charged} (recorded LLM calls {recorded})")
        print(f"ledger: {len(jobs)} jobs whose charge differs from their recorded LLM calls")
        return 1 if bad or jobs else 0

    return asyncio.run(_with_store(act))


def migrate(_: argparse.Namespace) -> int:
    """Applies pending database migrations and exits (0 when the schema is current).

    What ``taskmesh tasks`` does at start, alone: a deployment runs it once (the Kubernetes
    migration Job) before new Tasks replicas start. Concurrent runs on PostgreSQL serialise on
    an advisory lock (``services.tasks.storage.db.migrate``)."""

    async def act(store) -> int:  # type: ignore[no-untyped-def]
        print("database schema is current", file=sys.stderr)
        return 0

    try:
        return asyncio.run(_with_store(act))
    except Exception as exc:  # noqa: BLE001 - one line, no driver message with addresses
        print(f"taskmesh migrate: failed ({type(exc).__name__})", file=sys.stderr)
        return 1
