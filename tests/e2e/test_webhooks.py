"""Client webhooks through every real process: a job finishes, the Tasks
outbox relays the event to RabbitMQ, the worker signs and POSTs it to a real
local receiver that verifies it with the ``standardwebhooks`` package."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.support.checks import wait_until
from tests.support.stack import Stack
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

GOOD = "Pay the electricity bill tomorrow"
VAGUE = "Do stuff"


def _register(http: httpx.Client, receiver: Receiver, **extra: object) -> str:
    created = http.post("/api/v1/webhooks", json={"url": receiver.url(), **extra})
    assert created.status_code == 201, created.text
    receiver.secret = created.json()["secret"]
    return created.json()["id"]


def _submit(http: httpx.Client, text: str) -> str:
    accepted = http.post("/api/v1/tasks", json={"naturalLanguage": text})
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["jobId"]


def _job_ids(receiver: Receiver) -> list[str]:
    return [r.event["data"]["jobId"] for r in receiver.received]


def test_users_receive_signed_events_for_their_own_finished_jobs(stack_factory) -> None:
    stack = stack_factory(WEBHOOK_ALLOW_PRIVATE="true")
    with (
        Receiver() as alice_hook,
        Receiver() as bob_hook,
        Receiver() as later_hook,
        httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=10
        ) as alice,
    ):
        bob_key = _create_user(stack, "bob")
        with httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=10
        ) as bob:
            endpoint = _register(alice, alice_hook)
            _register(bob, bob_hook)
            succeeded, failed = _submit(alice, GOOD), _submit(alice, VAGUE)
            bobs = _submit(bob, GOOD)

            wait_until(lambda: len(alice_hook.received) >= 2, 60, "alice's two events")
            wait_until(lambda: len(bob_hook.received) >= 1, 60, "bob's event")
            events = {r.event["data"]["jobId"]: r for r in alice_hook.received}
            assert set(events) == {succeeded, failed}
            for job_id, received in events.items():
                assert received.verified is not None, "signature must verify"
                assert received.headers["webhook-id"].startswith("msg_")
                assert received.event["data"] == alice.get(f"/api/v1/jobs/{job_id}").json()
            assert events[succeeded].event["type"] == "job.succeeded"
            assert events[succeeded].event["data"]["task"]["category"] == "finance"
            assert events[failed].event["type"] == "job.failed"
            assert events[failed].event["data"]["error"]["type"] == "VAGUE_INPUT"
            # Each user hears only about their own jobs.
            assert _job_ids(bob_hook) == [bobs]
            assert bob_hook.received[0].verified is not None

            # Deleting the endpoint stops its deliveries; another endpoint still hears.
            assert alice.delete(f"/api/v1/webhooks/{endpoint}").status_code == 204
            _register(alice, later_hook)
            after = _submit(alice, GOOD)
            wait_until(lambda: later_hook.received, 60, "the new endpoint's event")
            assert _job_ids(later_hook) == [after]
            assert set(_job_ids(alice_hook)) == {succeeded, failed}


def test_a_hung_receiver_slows_neither_submissions_nor_jobs(stack_factory) -> None:
    stack = stack_factory(WEBHOOK_ALLOW_PRIVATE="true", WEBHOOK_TIMEOUT_S="60")
    with (
        Receiver() as hook,
        httpx.Client(
            base_url=stack.url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=30
        ) as http,
    ):
        hook.gate.clear()  # accepts connections, never answers until opened
        _register(http, hook)
        _submit(http, GOOD)
        wait_until(lambda: hook.waiting >= 1, 60, "a delivery hanging at the receiver")

        for n in range(8):
            started = time.monotonic()
            accepted = http.post("/api/v1/tasks", json={"naturalLanguage": f"{GOOD} {n}"})
            assert accepted.status_code == 202
            # Far below WEBHOOK_TIMEOUT_S: no submission waits for the receiver.
            assert time.monotonic() - started < 5.0
        finished = http.post(
            "/api/v1/tasks", json={"naturalLanguage": VAGUE + " now"}, headers={"Prefer": "wait=20"}
        )
        assert finished.status_code in (200, 201), finished.text
        assert finished.json()["status"] in ("succeeded", "failed")
        assert hook.waiting >= 1 and not hook.gate.is_set()  # deliveries still stuck

        hook.gate.set()
        wait_until(lambda: len(hook.received) >= 10, 90, "every event once the receiver answers")
        assert len({r.webhook_id for r in hook.received}) == 10


def _create_user(stack: Stack, name: str) -> str:
    """A second user, created with the CLI against the stack's database."""
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "users", "create", name],
        env=stack.stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()
