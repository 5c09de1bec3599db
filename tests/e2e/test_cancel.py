"""Cancel (SPEC §5, §6): over HTTP and with ``taskmesh jobs cancel``, on the real
processes. Calls wait at the simulator's gate, so "running" and "queued" are
states the test holds."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.checks import all_tasks, assert_ledger_balanced, client, jobs, submit, wait_until
from tests.support.sim import sim_gate, sim_state

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]


def status(http, job_id: str) -> str:  # type: ignore[no-untyped-def]
    return jobs(http, [job_id])[job_id]["status"]


def test_cancel_over_http_stops_a_running_job_and_a_queued_one_never_runs(stack_factory):
    stack = stack_factory(sim_args=["--hold"], WORKER_CONCURRENCY="1")
    worker_log = stack.log_dir / "worker.log"
    with client(stack) as http:
        running, queued = submit(
            http, ["Pay the water bill tomorrow", "Book a dentist appointment next week"]
        )
        wait_until(lambda: sim_state(stack)["held"] >= 1, 60, "the first job's LLM call")
        assert status(http, running) == "running" and status(http, queued) == "queued"

        response = http.post(f"/api/v1/jobs/{queued}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"

        response = http.post(f"/api/v1/jobs/{running}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        # The worker learns of it and abandons the LLM calls within about a second.
        wait_until(lambda: "stopping its run" in worker_log.read_text(), 5, "the run stopped")
        # What the abandoned calls may have cost is charged; nothing stays reserved.
        wait_until(lambda: http.get("/api/v1/usage").json()["used"] > 0, 30, "the charge")

        again = http.post(f"/api/v1/jobs/{running}/cancel")
        assert again.status_code == 409
        assert again.headers["Content-Type"].startswith("application/problem+json")
        assert (
            http.post("/api/v1/jobs/00000000-0000-4000-8000-000000000000/cancel").status_code == 404
        )

        sim_gate(stack, open=True)
        # The queued job's message reaches the worker, which skips it: it never runs.
        wait_until(lambda: "not runnable" in worker_log.read_text(), 60, "the queued job skipped")
        final = jobs(http, [running, queued])
        assert {job["status"] for job in final.values()} == {"cancelled"}
        assert final[queued]["attempts"] == 0
        assert all_tasks(http) == []
    assert_ledger_balanced(stack)


def test_taskmesh_jobs_cancel_cancels_a_running_job(stack_factory):
    stack = stack_factory(sim_args=["--hold"])
    env = {**os.environ, **stack.env}

    def cancel(job_id: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "launcher", "jobs", "cancel", job_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    with client(stack) as http:
        [job_id] = submit(http, ["Pay the water bill tomorrow"])
        wait_until(lambda: status(http, job_id) == "running", 60, "the job running")
        done = cancel(job_id)
        assert done.returncode == 0, done.stderr
        fields = done.stdout.rstrip("\n").split("\t")
        assert fields[0] == job_id and fields[2] == "cancelled", done.stdout
        refused = cancel(job_id)
        assert refused.returncode == 1 and "already finished" in refused.stderr
        assert "FAILED_PRECONDITION" not in refused.stderr  # the operator reads words, not codes
        sim_gate(stack, open=True)
        assert status(http, job_id) == "cancelled"
        wait_until(lambda: http.get("/api/v1/usage").json()["reserved"] == 0, 30, "released")
    assert_ledger_balanced(stack)
