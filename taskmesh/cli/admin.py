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
            for row in await service.list():
                state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
                print(
                    f"{row.user_name}\t{row.prefix}…\t{state}\t{row.created_at:%Y-%m-%dT%H:%M:%SZ}"
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


def jobs(args: argparse.Namespace) -> int:
    """``taskmesh jobs cancel JOB_ID``: the same transition as the API's cancel
    (lifecycle.enter_terminal); a running job's worker stops within its check interval."""
    from services.tasks.domain.jobs import JobService
    from services.tasks.main import job_policy

    async def act(store) -> int:  # type: ignore[no-untyped-def]
        service = JobService(store, _NoDispatch(), job_policy(load_settings()))
        job = await service.cancel(None, args.job_id)
        print(f"{job.id}\t{job.state.value}")
        return 0

    try:
        return asyncio.run(_with_store(act))
    except errors.TaskmeshError as exc:  # not found, already finished
        print(f"taskmesh: {exc.message}", file=sys.stderr)
        return 1


class _NoDispatch:
    async def dispatch(self, job, reservation, timeout) -> None:  # type: ignore[no-untyped-def]
        raise errors.Unavailable("not a submission path")


def ledger_check(_: argparse.Namespace) -> int:
    async def act(store) -> int:  # type: ignore[no-untyped-def]
        async with store.read() as tx:
            rows = await tx.ledger_rows()
        bad = 0
        for user_id, window, used, reserved, charged, open_ in rows:
            if used != charged or reserved != open_ or used < 0 or reserved < 0:
                bad += 1
                print(
                    f"MISMATCH user={user_id} window={window} used={used} (jobs charged {charged}) "
                    f"reserved={reserved} (open reservations {open_})"
                )
        print(f"ledger: {len(rows)} windows checked, {bad} mismatched")
        return 1 if bad else 0

    return asyncio.run(_with_store(act))
