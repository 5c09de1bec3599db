"""What every end-to-end and fault test ends with: each accepted job
terminal, exactly one task per succeeded job, the token ledger balanced."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from tests.e2e.conftest import RunningStack

TERMINAL = ("succeeded", "failed", "cancelled")


def client(stack: RunningStack, timeout: float = 10) -> httpx.Client:
    return httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=timeout
    )


def submit(http: httpx.Client, texts: list[str]) -> list[str]:
    """Job ids of the submissions that were accepted (202)."""
    ids = []
    for text in texts:
        response = http.post("/api/v1/tasks", json={"naturalLanguage": text})
        if response.status_code == 202:
            ids.append(response.json()["jobId"])
        else:
            assert response.status_code in (429, 503), response.text
    return ids


def sentences(n: int, prefix: str = "Prepare the quarterly report") -> list[str]:
    return [f"{prefix} number {i} for the finance team by next Friday" for i in range(n)]


def jobs(http: httpx.Client, ids: list[str]) -> dict[str, dict]:
    out = {}
    for job_id in ids:
        response = http.get(f"/api/v1/jobs/{job_id}")
        if response.status_code == 200:
            out[job_id] = response.json()
    return out


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_terminal(http: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict]:
    state: dict[str, dict] = {}

    def done() -> bool:
        pending = [i for i in ids if state.get(i, {}).get("status") not in TERMINAL]
        try:
            state.update(jobs(http, pending))
        except httpx.HTTPError:
            return False
        return all(state.get(i, {}).get("status") in TERMINAL for i in ids)

    wait_until(done, timeout, f"{len(ids)} jobs to finish", every=0.5)
    return state


def all_tasks(http: httpx.Client) -> list[dict]:
    tasks, skip = [], 0
    while True:
        page = http.get("/api/v1/tasks", params={"skip": skip, "take": 100}).json()
        tasks.extend(page["tasks"])
        if not page["pagination"]["hasMore"]:
            return tasks
        skip += 100


def assert_exactly_once(http: httpx.Client, final: dict[str, dict]) -> None:
    succeeded = {job_id for job_id, job in final.items() if job["status"] == "succeeded"}
    task_jobs = [task["jobId"] for task in all_tasks(http)]
    assert len(task_jobs) == len(set(task_jobs)), "a job produced more than one task"
    assert set(task_jobs) == succeeded


def assert_ledger_balanced(stack: RunningStack) -> None:
    check = subprocess.run(
        [sys.executable, "-m", "launcher", "ledger", "check"],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    usage = None
    with client(stack) as http:
        usage = http.get("/api/v1/usage").json()
    assert usage["reserved"] == 0, "a reservation outlived its job"
