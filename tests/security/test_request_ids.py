"""A client's well-formed X-Request-Id follows its request through every
service's logs; anything else is replaced, and never written anywhere."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass

import pytest

from tests.security.conftest import LOGGING_SERVICES
from tests.support.checks import wait_terminal, wait_until
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass(frozen=True)
class Traced:
    request_id: str
    job_id: str


@pytest.fixture(scope="module")
def traced(stack: Stack) -> Traced:
    """One job submitted under a client-chosen id, followed to its end."""
    request_id = f"client-trace.{uuid.uuid4().hex}:01"
    with stack.http(stack.api_key) as http:
        accepted = http.post(
            "/api/v1/tasks",
            json={"naturalLanguage": "Book a dentist appointment for next Tuesday"},
            headers={"X-Request-Id": request_id},
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["x-request-id"] == request_id
        job = wait_terminal(http, accepted.headers["Location"])
    assert job["status"] == "succeeded", job
    # The worker logs the completion last; after that every hop has logged.
    wait_until(lambda: request_id in stack.log_text("worker"), 30, "the worker's log line")
    return Traced(request_id, job["jobId"])


@pytest.mark.parametrize(
    "service",
    [
        "gateway",
        "tasks",
        "ai",
        "worker",
    ],
)
def test_a_clients_request_id_is_in_every_services_log(
    stack: Stack, traced: Traced, service: str
) -> None:
    assert service in LOGGING_SERVICES
    lines = [line for line in stack.log_text(service).splitlines() if traced.request_id in line]

    assert lines, f"{service} logged nothing under {traced.request_id}"


def _raw_get(stack: Stack, header_value: bytes) -> bytes:
    """A request whose header bytes no HTTP client library would send."""
    head = (
        b"GET /api/v1/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: Bearer " + stack.api_key.encode() + b"\r\n"
        b"X-Request-Id: " + header_value + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", stack.ports["gateway"]), timeout=30) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _response_request_id(raw: bytes) -> tuple[int, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    lowered = {k.lower(): v for k, v in headers.items()}
    return int(status_line.split(" ")[1]), lowered["x-request-id"]


MALFORMED: dict[str, bytes] = {
    "spaces": b"evil id with spaces 0001",
    "500-chars": b"x-" * 250,
    "too-short": b"abc1234",
    "trailing-newline": b"forged-id-trailing-nl-0001\n",
    "control-character": b"forged\x01id-control-0001",
    "log-injection": b'forged-0001", "level": "critical',
    "non-ascii": "forged-id-ünïcode-0001".encode(),
}


@pytest.mark.parametrize("value", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_request_id_is_replaced_and_never_logged(stack: Stack, value: bytes) -> None:
    status, echoed = _response_request_id(_raw_get(stack, value))

    assert status == 200
    assert str(uuid.UUID(echoed)) == echoed
    # The fresh id is what the gateway logged for this request...
    wait_until(lambda: echoed in stack.log_text("gateway"), 10, "the access log line")
    # ...and the client's value is nowhere, escaped or not.
    visible = value.decode("utf-8", errors="replace").strip()
    for name, text in stack.all_logs().items():
        assert visible not in text, f"{name}.log holds the malformed id"
        assert json.dumps(visible)[1:-1] not in text
