"""`taskmesh ledger check` (SPEC §8, issue 10): besides the windows, every job's charge
must equal the sum of its recorded LLM calls; the command names the jobs that differ
and exits 1. On SQLite and PostgreSQL, asking a real in-process Tasks AdminService (the
command never opens the database itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from services.tasks.domain import models as m
from services.tasks.domain.users import UserService
from services.tasks.transport.admin_servicer import SERVICE_NAME, AdminServicer, registrar
from taskmesh.rpc import server
from tests.tasks.conftest import DRAFT, reads

pytestmark = pytest.mark.timeout(60)

TOKEN = "ledger-check-token"


@pytest.fixture
async def tasks_addr(env):
    """HOST:PORT of an AdminService over the test environment's store."""
    service = env[0]
    servicer = AdminServicer(UserService(service.store), service, reads(service))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(servicer)], [SERVICE_NAME]
    )
    yield f"127.0.0.1:{port}"
    await grpc_server.stop(None)


async def ledger_check(tasks_addr: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the in-process server answers on this event loop meanwhile.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "launcher", "ledger", "check"],
        env={**os.environ, "TASKS_GRPC_ADDR": tasks_addr, "INTERNAL_AUTH_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=50,
    )


async def test_ledger_check_passes_when_every_charge_equals_its_calls(env, tasks_addr):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    await service.complete(
        job.id, DRAFT, 2300, [m.CallUsage("core", 1400, 350), m.CallUsage("subtasks", 450, 100)]
    )
    result = await ledger_check(tasks_addr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 jobs whose charge differs" in result.stdout


async def test_ledger_check_names_a_job_charged_more_than_its_recorded_calls(env, tasks_addr):
    service, user, _, _, _ = env
    job = await service.create(user, "Pay the water bill tomorrow")
    await service.start(job.id)
    # The windows balance, but one call behind the charge was never recorded.
    await service.complete(job.id, DRAFT, 2300, [m.CallUsage("core", 1400, 350)])
    result = await ledger_check(tasks_addr)
    assert result.returncode == 1
    assert f"MISMATCH job={job.id} charged=2300 (recorded LLM calls 1750)" in result.stdout
    assert "0 mismatched" in result.stdout  # the windows themselves balance
