"""When a dependency fails, the client learns that something failed and which
request it was, nothing about the internals; and service resumes once the
dependency is back."""

from __future__ import annotations

import signal
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support.checks import wait_terminal, wait_until
from tests.support.gateway import assert_problem
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

#: Tables whose loss breaks submitting, polling and the usage figures.
BROKEN_TABLES = ("jobs", "token_windows")


def _leaks(stack: Stack) -> tuple[str, ...]:
    return (
        "sqlite",
        "SQL",
        "Traceback",
        "OperationalError",
        "no such table",
        "token_windows",
        ".py",
        'File "',
        "127.0.0.1",
        "localhost",
        str(stack.db_path.parent),
        stack.tasks_addr,
        stack.token,
        "grpc",
        "StatusCode",
    )


def _assert_generic_failure(stack: Stack, response: httpx.Response) -> dict[str, object]:
    assert response.status_code in (500, 503), response.text
    body = assert_problem(response, response.status_code)
    text = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for leak in _leaks(stack):
        assert leak not in text, f"{leak!r} reached the client: {text}"
    return body


@contextmanager
def _tables_missing(stack: Stack) -> Iterator[None]:
    """Renames tables under the running Tasks service, as a broken or
    half-restored database would look to it, and puts them back."""
    db = sqlite3.connect(stack.db_path, timeout=30, isolation_level=None)
    try:
        for table in BROKEN_TABLES:
            db.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_gone"')
        yield
    finally:
        for table in BROKEN_TABLES:
            db.execute(f'ALTER TABLE "{table}_gone" RENAME TO "{table}"')
        db.close()


def test_a_database_failure_is_a_generic_problem_and_service_recovers(
    fragile_stack: Stack,
) -> None:
    stack = fragile_stack
    with stack.http(stack.api_key) as http:
        with _tables_missing(stack):
            answers = [
                http.post("/api/v1/tasks", json={"naturalLanguage": "Pay the gas bill tomorrow"}),
                http.get("/api/v1/usage"),
                http.get(f"/api/v1/jobs/{uuid.uuid4()}"),
            ]
            request_ids = []
            for response in answers:
                body = _assert_generic_failure(stack, response)
                request_ids.append(str(body["requestId"]))

        # An operator can find each failure from the id the client was given.
        tasks_log = stack.log_text("tasks")
        for request_id in request_ids:
            assert request_id in tasks_log

        wait_until(
            lambda: http.get("/api/v1/usage").status_code == 200, 30, "usage to answer again"
        )
        accepted = http.post("/api/v1/tasks", json={"naturalLanguage": "Pay the gas bill today"})
        assert accepted.status_code == 202, accepted.text
        assert wait_terminal(http, accepted.headers["Location"])["status"] == "succeeded"
    for name, text in stack.all_logs().items():
        assert stack.token not in text, f"the internal token is in {name}.log"


def test_tasks_down_is_503_with_retry_after_and_service_recovers(fragile_stack: Stack) -> None:
    stack = fragile_stack
    stack.stack.signal("tasks", signal.SIGTERM)
    assert stack.stack.wait("tasks", 30) == 0
    with stack.http(stack.api_key) as http:
        answers = [
            http.post("/api/v1/tasks", json={"naturalLanguage": "Water the plants tomorrow"}),
            http.get("/api/v1/usage"),
            http.get("/api/v1/tasks"),
            http.get(f"/api/v1/jobs/{uuid.uuid4()}/events"),
        ]
        for response in answers:
            body = _assert_generic_failure(stack, response)
            assert response.status_code == 503
            assert body["type"].endswith("/unavailable")
            assert int(response.headers["retry-after"]) >= 1
        not_ready = http.get("/readyz")
        _assert_generic_failure(stack, not_ready)
        assert not_ready.status_code == 503

        stack.stack.start("tasks")
        wait_until(
            lambda: http.get("/api/v1/usage").status_code == 200, 60, "Tasks to answer again"
        )
        assert http.get("/readyz").status_code == 200
        accepted = http.post("/api/v1/tasks", json={"naturalLanguage": "Water the plants today"})
        assert accepted.status_code == 202, accepted.text
        assert wait_terminal(http, accepted.headers["Location"])["status"] == "succeeded"
