"""Job lists on the real processes, the three ways users reach them: HTTP
(``GET /api/v1/jobs``, the caller's only), grpcurl (``ListJobs`` with the
internal token) and ``taskmesh jobs list`` (operators: every user's jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_grpcurl import grpcurl
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SUCCEEDS = "Pay the electricity bill tomorrow"
VAGUE = "Do stuff"


def taskmesh(
    stack: Stack, *args: str, cwd: Path | None = None, token: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env}
    if not token:
        env.pop("INTERNAL_AUTH_TOKEN")
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _finished(http: httpx.Client, text: str) -> dict[str, Any]:
    response = http.post(
        "/api/v1/tasks", json={"naturalLanguage": text}, headers={"Prefer": "wait=30"}
    )
    assert response.status_code in (200, 201), response.text
    job: dict[str, Any] = response.json()
    return job


# A stack start, three jobs and four CLI processes: more than the global limit on a slow day.
@pytest.mark.timeout(300)
def test_users_list_their_own_jobs_and_operators_list_everyones(
    running_stack: Stack, tmp_path: Path
) -> None:
    created = taskmesh(running_stack, "users", "create", "carol")
    assert created.returncode == 0, created.stderr
    carol_key = created.stdout.strip()
    dev = httpx.Client(
        base_url=running_stack.url,
        headers={"Authorization": f"Bearer {running_stack.api_key}"},
        timeout=40,
    )
    carol = httpx.Client(
        base_url=running_stack.url, headers={"Authorization": f"Bearer {carol_key}"}, timeout=40
    )
    with dev, carol:
        dev_ok = _finished(dev, SUCCEEDS)
        dev_vague = _finished(dev, VAGUE)
        carol_ok = _finished(carol, SUCCEEDS)
        assert (dev_ok["status"], dev_vague["status"]) == ("succeeded", "failed")

        # HTTP: the caller's jobs only, newest first.
        mine = dev.get("/api/v1/jobs").json()
        assert [j["jobId"] for j in mine["jobs"]] == [dev_vague["jobId"], dev_ok["jobId"]]
        assert mine["pagination"]["totalCount"] == 2
        failed = dev.get("/api/v1/jobs", params={"status": "failed"}).json()
        assert [j["jobId"] for j in failed["jobs"]] == [dev_vague["jobId"]]
        assert failed["jobs"][0]["error"]["type"] == "VAGUE_INPUT"
        page = dev.get("/api/v1/jobs", params={"take": 1, "skip": 1}).json()
        assert [j["jobId"] for j in page["jobs"]] == [dev_ok["jobId"]]
        assert page["pagination"]["currentPage"] == 2 and not page["pagination"]["hasMore"]
        theirs = carol.get("/api/v1/jobs").json()
        assert [j["jobId"] for j in theirs["jobs"]] == [carol_ok["jobId"]]

    # gRPC with grpcurl: every user's jobs when asked explicitly.
    listed = grpcurl(
        "-H",
        f"authorization: Bearer {running_stack.token}",
        "-d",
        '{"all_users": true, "state": "JOB_STATE_SUCCEEDED"}',
        running_stack.tasks_addr,
        "taskmesh.tasks.v1.TasksService/ListJobs",
    )
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    # grpcurl prints the proto field names.
    assert {j["job_id"] for j in body["jobs"]} == {dev_ok["jobId"], carol_ok["jobId"]}
    assert body["total_count"] == 2

    # The operator's command: every user's jobs, one line each, newest first.
    everyone = taskmesh(running_stack, "jobs", "list")
    assert everyone.returncode == 0, everyone.stderr
    rows = [line.split("\t") for line in everyone.stdout.splitlines()]
    assert [row[0] for row in rows] == [carol_ok["jobId"], dev_vague["jobId"], dev_ok["jobId"]]
    assert [row[2] for row in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[1][5] == "VAGUE_INPUT" and rows[0][5] == carol_ok["task"]["title"]
    assert "3 of 3 jobs" in everyone.stderr
    only_failed = taskmesh(running_stack, "jobs", "list", "--status", "failed")
    assert [line.split("\t")[0] for line in only_failed.stdout.splitlines()] == [dev_vague["jobId"]]

    # Without INTERNAL_AUTH_TOKEN it reads the token `taskmesh up` keeps, or says what is missing.
    missing = taskmesh(running_stack, "jobs", "list", cwd=tmp_path, token=False)
    assert missing.returncode == 2 and "INTERNAL_AUTH_TOKEN" in missing.stderr
    (tmp_path / ".taskmesh").mkdir()
    (tmp_path / ".taskmesh" / "internal-token").write_text(running_stack.token + "\n")
    from_file = taskmesh(running_stack, "jobs", "list", "--take", "1", cwd=tmp_path, token=False)
    assert from_file.returncode == 0, from_file.stderr
    assert len(from_file.stdout.splitlines()) == 1


def test_a_wrong_token_is_a_clear_failure(running_stack: Stack) -> None:
    env_token = {**running_stack.env, "INTERNAL_AUTH_TOKEN": "not-the-token"}
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "jobs", "list"],
        env={**os.environ, **env_token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "UNAUTHENTICATED" in result.stderr and "Traceback" not in result.stderr
