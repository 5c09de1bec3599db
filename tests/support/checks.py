"""What every end-to-end and fault test ends with: each accepted job
terminal, exactly one task per succeeded job, the token ledger balanced; and the
one way a test waits for an outcome (``wait_until``, ``wait_terminal``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

import httpx

from tests.support.stack import Stack

#: The statuses a job leaves no more (SPEC §5).
TERMINAL = ("succeeded", "failed", "cancelled")
T = TypeVar("T")


def client(stack: Stack, timeout: float = 10) -> httpx.Client:
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


def wait_until(condition: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Polls ``condition`` every ``every`` seconds until it returns something truthy and
    returns that; fails naming ``what`` after ``timeout`` seconds. The wait is for an
    outcome, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def _path(job: str) -> str:
    # A job id, or its Location (the path or URL the gateway answered 202 with).
    return job if "/" in job else f"/api/v1/jobs/{job}"


@overload
def wait_terminal(http: httpx.Client, job: str, timeout: float = 60) -> dict[str, Any]: ...
@overload
def wait_terminal(
    http: httpx.Client, job: list[str], timeout: float = 60
) -> dict[str, dict[str, Any]]: ...
def wait_terminal(
    http: httpx.Client, job: str | list[str], timeout: float = 60
) -> dict[str, Any] | dict[str, dict[str, Any]]:
    """Waits until every job in ``job`` (job ids or Locations) is in a TERMINAL status;
    returns its JSON body, or for a list each one by the id or Location given. A
    connection error while a service restarts counts as not yet."""
    ids = [job] if isinstance(job, str) else job
    state: dict[str, dict[str, Any]] = {}

    def done() -> bool:
        for key in [i for i in ids if state.get(i, {}).get("status") not in TERMINAL]:
            try:
                response = http.get(_path(key))
            except httpx.HTTPError:
                return False
            if response.status_code == 200:
                state[key] = response.json()
        return all(state.get(i, {}).get("status") in TERMINAL for i in ids)

    wait_until(done, timeout, f"{len(ids)} job(s) to finish: {ids[:3]}")
    return state[job] if isinstance(job, str) else state


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


def assert_ledger_balanced(stack: Stack) -> None:
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
