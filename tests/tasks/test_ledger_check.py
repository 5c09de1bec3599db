"""`taskmesh ledger check` (SPEC §8, issue 10): besides the windows, every job's charge
must equal the sum of its recorded LLM calls; the command names the jobs that differ
and exits 1. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.tasks.domain import models as m
from tests.tasks.conftest import DRAFT

pytestmark = pytest.mark.timeout(60)


def ledger_check(database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskmesh.cli", "ledger", "check"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=50,
    )


async def test_ledger_check_passes_when_every_charge_equals_its_calls(env, database_url):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    await service.complete(
        job.id, DRAFT, 2300, [m.CallUsage("core", 1400, 350), m.CallUsage("subtasks", 450, 100)]
    )
    result = ledger_check(database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 jobs whose charge differs" in result.stdout


async def test_ledger_check_names_a_job_charged_more_than_its_recorded_calls(env, database_url):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    # The windows balance, but one call behind the charge was never recorded.
    await service.complete(job.id, DRAFT, 2300, [m.CallUsage("core", 1400, 350)])
    result = ledger_check(database_url)
    assert result.returncode == 1
    assert f"MISMATCH job={job.id} charged=2300 (recorded LLM calls 1750)" in result.stdout
    assert "0 mismatched" in result.stdout  # the windows themselves balance
