"""The SQLite database file holds webhook signing secrets and key hashes: it, and the WAL
files beside it, are for the Tasks service's user alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from services.tasks.storage import db
from services.tasks.storage.sqlite_inline import FILE_MODE


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _migrate_and_write(path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            await conn.execute(text("INSERT INTO probe VALUES (1)"))
        # While a connection is open the WAL files exist; they share the database's mode.
        async with engine.connect() as conn:
            await conn.execute(text("SELECT count(*) FROM probe"))
            wal = [Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(p.exists() for p in wal)
            assert [_mode(p) for p in wal] == [FILE_MODE, FILE_MODE]
    finally:
        await engine.dispose()


@pytest.mark.timeout(30)
async def test_a_new_database_file_is_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would leave a new file world-readable
    try:
        path = tmp_path / "taskmesh.db"
        await _migrate_and_write(path)
    finally:
        os.umask(old)
    assert _mode(path) == FILE_MODE


@pytest.mark.timeout(30)
async def test_an_existing_world_readable_database_is_made_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "taskmesh.db"
    path.touch()
    path.chmod(0o644)
    await _migrate_and_write(path)
    assert _mode(path) == FILE_MODE
