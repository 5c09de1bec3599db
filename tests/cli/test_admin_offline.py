"""Operator commands answered by the Tasks service (``users``, ``ledger check``) say in one
line, exit 1, when it does not answer, and exit 2 without an internal token; neither case
touches a database (SPEC §3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.machine import free_port


def _taskmesh(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("INTERNAL_AUTH_TOKEN", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        cwd=cwd,
        # A database URL that would be created if anything opened it.
        env={**base, "DATABASE_URL": f"sqlite+aiosqlite:///{cwd}/taskmesh.db", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args", [("users", "create", "carol"), ("users", "list"), ("ledger", "check")]
)
def test_without_tasks_running_the_command_says_so_in_one_line(tmp_path: Path, args) -> None:
    # Nothing listens there: the port is handed out for this test and never bound.
    addr = f"127.0.0.1:{free_port()}"
    result = _taskmesh(tmp_path, {"TASKS_GRPC_ADDR": addr, "INTERNAL_AUTH_TOKEN": "t" * 32}, *args)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert f"the Tasks service does not answer at {addr}" in line
    assert "taskmesh up" in line
    assert not (tmp_path / "taskmesh.db").exists()


def test_without_an_internal_token_the_command_says_where_it_looked(tmp_path: Path) -> None:
    result = _taskmesh(tmp_path, {"TASKS_GRPC_ADDR": f"127.0.0.1:{free_port()}"}, "users", "list")

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "INTERNAL_AUTH_TOKEN" in line and ".taskmesh/internal-token" in line
    assert not (tmp_path / "taskmesh.db").exists()
