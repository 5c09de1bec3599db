"""Logs: one JSON object per line from every service, with the request id and
job id of the work it is about; ``LOG_FORMAT=console`` for humans."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.observability.conftest import Observed
from tests.support.machine import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SERVICES = ("gateway", "tasks", "ai", "worker")
LEVELS = {"debug", "info", "warning", "error", "critical"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line!r}") from None
        assert isinstance(event, dict), f"{path.name}:{number}: {line!r}"
        events.append(event)
    return events


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_every_line_is_one_json_event(observed_stack: Observed) -> None:
    for service in SERVICES:
        path = observed_stack.log_dir / f"{service}.log"
        events = read_events(path)
        assert events, f"{service} logged nothing"
        for event in events:
            assert TIMESTAMP.match(event.get("ts", "")), event
            assert event.get("level") in LEVELS, event
            assert event.get("service") == service, event
            assert isinstance(event.get("event"), str) and event["event"], event


def test_job_lines_carry_the_job_and_request_ids(observed_stack: Observed) -> None:
    jobs = [s for s in observed_stack.submissions if s.job_id is not None]
    worker_log = observed_stack.log_dir / "worker.log"

    def completions() -> dict[str, dict[str, Any]]:
        return {
            e["job_id"]: e
            for e in read_events(worker_log)
            if e["event"] == "job completed" and "job_id" in e
        }

    assert wait_for(lambda: len(completions()) >= len(jobs)), completions()
    completed = completions()
    for submission in jobs:
        line = completed[str(submission.job_id)]
        # The id the client got back follows the job through the queue to the worker.
        assert line["request_id"] == submission.request_id, line
        assert line["outcome"] == submission.final["status"], line
    for event in read_events(worker_log):
        if event.get("logger") == "services.worker.consumer":
            assert event.get("job_id"), event

    # Tasks and AI too: every line of an accepted submission's request names its job, the
    # per-call "rpc" line included (SPEC §12).
    for service in ("tasks", "ai"):
        events = read_events(observed_stack.log_dir / f"{service}.log")
        for submission in jobs:
            # The key check comes before the job exists: it is about the caller, not a job.
            about = [
                e
                for e in events
                if e.get("request_id") == submission.request_id and e.get("rpc") != "Authenticate"
            ]
            assert about, (service, submission.request_id)
            for event in about:
                assert event.get("job_id") == str(submission.job_id), (service, event)

    access = {
        e["request_id"]: e
        for e in read_events(observed_stack.log_dir / "gateway.log")
        if e.get("logger") == "gateway.access"
    }
    for submission in observed_stack.submissions:
        assert access[submission.request_id]["status"] == submission.status_code

    (refused,) = [s for s in observed_stack.submissions if s.status_code == 400]
    screening = [e for e in read_events(observed_stack.log_dir / "ai.log") if e.get("pattern")]
    assert [e["request_id"] for e in screening] == [refused.request_id]
    assert refused.text not in json.dumps(screening), "the refused text itself is not logged"


def test_console_format_writes_lines_for_humans(tmp_path: Path) -> None:
    log = tmp_path / "tasks.log"
    port = free_port()
    env = {
        **os.environ,
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "info",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db",
        "INTERNAL_AUTH_TOKEN": secrets.token_urlsafe(24),
        "TASKS_GRPC_ADDR": f"127.0.0.1:{port}",
        "AI_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "TASKS_METRICS_PORT": "0",
        "SHUTDOWN_GRACE_S": "2",
    }
    env.pop("TASKMESH_DEV_API_KEY", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "launcher", "tasks"], env=env, stdout=out, stderr=out
        )
        try:
            serving = wait_for(lambda: "tasks serving" in log.read_text(encoding="utf-8"))
            assert serving, log.read_text(encoding="utf-8")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    assert code == 0
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    serving_line = next(line for line in lines if "tasks serving" in line)
    assert re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +tasks services\.tasks\.main: tasks serving"
        rf"  addr=127\.0\.0\.1:{port} port={port}$",
        serving_line,
    ), serving_line
    assert any(line.endswith("tasks stopped") for line in lines), lines
