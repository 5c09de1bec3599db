"""Migration 0004 itemises the charges made before it: each becomes one "unitemized"
call record, so `taskmesh ledger check` holds for old jobs too (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text

from services.tasks.storage import db
from services.tasks.storage.repository import Store

NOW = datetime(2024, 1, 15, 12, tzinfo=UTC)


async def test_charges_from_before_0004_are_backfilled_as_one_record_each(database_url):
    store = Store(database_url)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(db._alembic_config(c), "0003"))
            await conn.execute(
                text("INSERT INTO users (id, name, created_at) VALUES ('u1', 'old', :now)"),
                {"now": NOW},
            )
            for job in ("j1", "j2"):
                await conn.execute(
                    text(
                        "INSERT INTO jobs (id, user_id, capability, state, natural_language,"
                        " attempts, version, created_at, updated_at, deadline_at)"
                        " VALUES (:job, 'u1', 'parse_task', 'succeeded', 'Buy milk', 1, 3,"
                        " :now, :now, :now)"
                    ),
                    {"job": job, "now": NOW},
                )
            await conn.execute(
                text(
                    "INSERT INTO token_reservations"
                    " (job_id, user_id, window_start, tokens, actual_tokens, settled_at)"
                    " VALUES ('j1', 'u1', 0, 2500, 1200, :now), ('j2', 'u1', 0, 2500, 0, :now)"
                ),
                {"now": NOW},
            )
            await conn.execute(
                text(
                    "INSERT INTO token_charges"
                    " (job_id, run, user_id, window_start, tokens, charged_at)"
                    " VALUES ('j1', 1, 'u1', 0, 500, :now)"
                ),
                {"now": NOW},
            )
        await store.open()  # migrates to head
        async with store.read() as tx:
            assert await tx.ledger.job_mismatches() == []
            rows = (
                await tx.c.execute(
                    text("SELECT operation, input_tokens FROM llm_call_usage WHERE job_id = 'j1'")
                )
            ).all()
        assert sorted(tuple(r) for r in rows) == [("unitemized", 500), ("unitemized", 1200)]
    finally:
        await store.close()
