"""Delivery guarantees under faults (SPEC §7–§8), on the real processes and
the real RabbitMQ (behind a proxy where the broker must fail). Each test makes
the state it needs (calls held at the simulator's gate) and waits for outcomes. Each test ends with every accepted job terminal, exactly
one task per succeeded job and the token ledger balanced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aio_pika
import httpx
import pytest

from tests.support.checks import (
    all_tasks,
    assert_exactly_once,
    assert_ledger_balanced,
    client,
    jobs,
    sentences,
    submit,
    wait_terminal,
    wait_until,
)
from tests.support.machine import free_port
from tests.support.sim import sim_gate, sim_state

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(420)]


#: Room for many jobs and many status reads; these tests are about delivery.
ROOMY = {
    "TOKEN_WINDOW_LIMIT": "100000000",
    "RATE_LIMIT_BUCKET_SIZE": "1000000",
    "RATE_LIMIT_REFILL_PER_S": "1000000",
}


def running_count(http: httpx.Client, ids: list[str]) -> int:
    return sum(job["status"] == "running" for job in jobs(http, ids).values())


def log_of(stack, service: str) -> str:
    return (stack.log_dir / f"{service}.log").read_text()


def assert_no_crash(stack) -> None:
    """A fault is a path the worker takes, never an unhandled exception. (aio-pika
    logs its own reconnect callbacks at error level; those are the library's.)"""
    ours = ('"logger": "services.', '"logger": "taskmesh.', '"logger": "asyncio"')
    bad = [
        line
        for line in log_of(stack, "worker").splitlines()
        if ('"level": "error"' in line and any(name in line for name in ours))
        or "never retrieved" in line
        or "crashed" in line
    ]
    assert not bad, "\n".join(bad[:5])


def test_worker_killed_mid_job_loses_nothing(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--hold"], WORKER_CONCURRENCY="100")
    with client(stack) as http:
        ids = submit(http, sentences(60))
        assert len(ids) == 60
        # Every job waits at the simulator's gate: all of them are mid-job.
        wait_until(lambda: running_count(http, ids) == 60, 120, "60 jobs in flight")
        stack.stack.signal("worker", signal.SIGKILL)
        stack.stack.wait("worker", 10)
        stack.stack.start("worker")
        sim_gate(stack, open=True)
        final = wait_terminal(http, ids, 180)
        assert all(job["status"] == "succeeded" for job in final.values())
        assert max(job["attempts"] for job in final.values()) >= 2  # redelivered, run again
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_llm_faults_are_retried_through_the_delay_queues(stack_factory):
    stack = stack_factory(
        **ROOMY,
        sim_args=[
            "--rate-500",
            "0.1",
            "--rate-429",
            "0.1",
            "--rate-timeout",
            "0.03",
            "--seed",
            "7",
        ],
        OPENAI_TIMEOUT_S="1",
    )
    with client(stack) as http:
        ids = submit(http, sentences(40))
        final = wait_terminal(http, ids, 240)
        failed = [job for job in final.values() if job["status"] == "failed"]
        assert all(job["error"]["type"] == "RETRIES_EXHAUSTED" for job in failed)
        assert len(failed) <= 2
        assert any(job["attempts"] > 1 for job in final.values()), "no fault was retried"
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_tasks_down_while_the_worker_completes(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--hold"], WORKER_METRICS_PORT=str(free_port()))
    with client(stack) as http:
        ids = submit(http, sentences(30))
        wait_until(lambda: running_count(http, ids) == 30, 120, "30 jobs in flight")
    stack.stack.signal("tasks", signal.SIGTERM)
    assert stack.stack.wait("tasks", 30) == 0
    sim_gate(stack, open=True)
    # The outage lasts until finished outcomes were parked in a retry queue,
    # however long the worker's own callback retries take on this machine.
    parked = {"reason": "tasks_unavailable"}
    wait_until(
        lambda: stack.metric("worker", "taskmesh_jobs_retried_total", **parked) >= 1,
        120,
        "an outcome parked",
    )
    stack.stack.start("tasks")
    with client(stack) as http:
        wait_until(lambda: http.get("/readyz").status_code == 200, 60, "tasks back")
        final = wait_terminal(http, ids, 180)
        assert all(job["status"] == "succeeded" for job in final.values())
        # Finished outcomes waited in the retry queue: no job was run twice.
        assert all(job["attempts"] == 1 for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_broker_connection_lost_mid_run(stack_factory, broker_proxy):
    """The broker goes away for the stack (a proxy drops every connection and
    refuses new ones) while 40 jobs are mid-LLM-call, and comes back."""
    stack = stack_factory(**ROOMY, sim_args=["--hold"], RABBITMQ_URL=broker_proxy.url)
    with client(stack) as http:
        ids = submit(http, sentences(40))
        assert len(ids) == 40
        wait_until(lambda: running_count(http, ids) == 40, 120, "40 jobs in flight")
        broker_proxy.cut()
        try:
            # Readiness tells the truth while the broker is away, and nothing
            # is accepted that could not be queued.
            wait_until(lambda: http.get("/readyz").status_code == 503, 60, "readyz 503")
            refused = http.post(
                "/api/v1/tasks", json={"naturalLanguage": "Book dentist appointment"}
            )
            assert refused.status_code == 503 and "Retry-After" in refused.headers
            # The held calls finish while the worker has no channel to ack on.
            sim_gate(stack, open=True)
            wait_until(lambda: sim_state(stack)["in_flight"] == 0, 60, "calls done")
        finally:
            broker_proxy.restore()
        wait_until(lambda: http.get("/readyz").status_code == 200, 120, "readyz 200 again")
        more = submit(http, sentences(10, "Book a venue for the team offsite"))
        assert len(more) == 10, "publishing did not resume"
        final = wait_terminal(http, ids + more, 240)
        assert all(job["status"] == "succeeded" for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)
    assert_no_crash(stack)


def test_worker_sigterm_finishes_in_flight_jobs(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--hold"], SHUTDOWN_GRACE_S="60")
    with client(stack) as http:
        ids = submit(http, sentences(10))
        wait_until(lambda: running_count(http, ids) == 10, 120, "10 jobs in flight")
        stack.stack.signal("worker", signal.SIGTERM)
        wait_until(lambda: "draining" in log_of(stack, "worker"), 60, "the worker draining")
        sim_gate(stack, open=True)
        assert stack.stack.wait("worker", 90) == 0
        # No worker runs now: whatever finished, finished during the grace period.
        final = jobs(http, ids)
        assert all(job["status"] == "succeeded" for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_worker_sigterm_while_the_broker_is_away_exits_without_waiting_out_the_grace(
    stack_factory, broker_proxy
):
    """With the broker gone and nothing in flight, a SIGTERM stops the worker at once: its
    reconnecting connection must not hold shutdown until the grace period (here longer than
    the test's bound) ends, and no job is lost by stopping."""
    stack = stack_factory(**ROOMY, RABBITMQ_URL=broker_proxy.url, SHUTDOWN_GRACE_S="3600")
    with client(stack) as http:
        ids = submit(http, sentences(3))
        final = wait_terminal(http, ids, 120)
        assert all(job["status"] == "succeeded" for job in final.values())
        broker_proxy.cut()
        try:
            wait_until(lambda: http.get("/readyz").status_code == 503, 60, "readyz 503")
            stack.stack.signal("worker", signal.SIGTERM)
            assert stack.stack.wait("worker", 120) == 0
        finally:
            broker_proxy.restore()
    assert_ledger_balanced(stack)
    assert_no_crash(stack)


def test_undecodable_and_duplicate_messages(stack_factory, rabbitmq_url, queue_name):
    stack = stack_factory(**ROOMY)
    with client(stack) as http:
        [done_id] = submit(http, ["Pay electricity bill tomorrow"])
        [done] = wait_terminal(http, [done_id], 60).values()
        assert done["status"] == "succeeded"

    async def publish(body: bytes, message_id: str) -> None:
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(
                aio_pika.Message(
                    body, content_type="application/x-protobuf", message_id=message_id
                ),
                routing_key=queue_name,
            )

    asyncio.run(publish(b"\xff\x00 not a protobuf", "garbage-1"))
    with client(stack) as http:
        [after_id] = submit(http, ["Book dentist appointment"])
        [after] = wait_terminal(http, [after_id], 60).values()
        assert after["status"] == "succeeded", "the worker stopped after a bad message"

    env = {**os.environ, **stack.env}
    listings = [taskmesh(env, "dlq", "list") for _ in range(3)]
    assert all(listed.returncode == 0 for listed in listings), listings[0].stderr
    [line] = [row for row in listings[0].stdout.splitlines() if row.startswith("garbage-1")]
    assert "undecodable" in line
    # It names the queue it read, so an operator without JOB_QUEUE set sees which one that was.
    assert f"dead-lettered in {stack.env['JOB_QUEUE']}-dlq" in listings[0].stderr
    # Listing is read-only: the same messages, in the same order, every time.
    assert listings[0].stdout == listings[1].stdout == listings[2].stdout

    # A redelivered message of a finished job: no second task, no LLM run.
    from taskmesh.jobs.v1 import jobs_pb2

    duplicate = jobs_pb2.CapabilityJob(job_id=done_id, user_id="ignored", request_id="dup")
    duplicate.parse_task.natural_language = "Pay electricity bill tomorrow"
    duplicate.capability = jobs_pb2.CAPABILITY_PARSE_TASK
    asyncio.run(publish(duplicate.SerializeToString(), done_id))
    worker_log = stack.log_dir / "worker.log"
    wait_until(lambda: "not runnable" in worker_log.read_text(), 30, "the duplicate skipped")
    with client(stack) as http:
        assert_exactly_once(http, {done_id: done, after_id: after})
    assert_ledger_balanced(stack)

    # A message whose job cannot be re-run stays, and the command says why.
    replayed = taskmesh(env, "dlq", "replay", "garbage-1")
    assert replayed.returncode == 1
    assert "garbage-1\tkept" in replayed.stdout
    assert f"kept 1 in {stack.env['JOB_QUEUE']}-dlq" in replayed.stderr
    assert "garbage-1" in taskmesh(env, "dlq", "list").stdout


def taskmesh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dead_letter_replay_re_runs_a_job_once_the_llm_is_fixed(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--rate-500", "1"], JOB_MAX_ATTEMPTS="1")
    env = {**os.environ, **stack.env}
    with client(stack) as http:
        [job_id] = submit(http, ["Pay the water bill tomorrow"])
        [failed] = wait_terminal(http, [job_id], 120).values()
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "RETRIES_EXHAUSTED"
        # The LLM is fixed.
        stack.stack.signal("llm-sim", signal.SIGTERM)
        stack.stack.wait("llm-sim", 30)
        stack.stack.sim_args = []
        stack.stack.start("llm-sim")

        def sim_serving() -> bool:
            try:
                return isinstance(sim_state(stack), dict)
            except httpx.HTTPError:
                return False

        # Replayed before the new simulator listens, the job would fail again.
        wait_until(sim_serving, 60, "the fixed simulator")
        wait_until(lambda: job_id in taskmesh(env, "dlq", "list").stdout, 30, "the dead letter")
        replayed = taskmesh(env, "dlq", "replay", "--all")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert f"{job_id}\treplayed" in replayed.stdout
        [done] = wait_terminal(http, [job_id], 120).values()
        assert done["status"] == "succeeded", done
        assert_exactly_once(http, {job_id: done})
        assert job_id not in taskmesh(env, "dlq", "list").stdout
    assert_ledger_balanced(stack)


def test_llm_retry_after_delays_the_next_attempt_and_the_job_succeeds(stack_factory):
    """A provider's 429 with Retry-After: the next attempt waits at least that long
    (SPEC §7), no attempt is spent inside the window, and the job succeeds after it."""
    window_s = 12
    stack = stack_factory(**ROOMY, sim_args=["--rate-limit-window-s", str(window_s)])
    with client(stack) as http:
        started = time.monotonic()
        [job_id] = submit(http, ["Pay the water bill tomorrow"])
        [done] = wait_terminal(http, [job_id], 180).values()
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2  # one inside the window, one after it
        assert time.monotonic() - started >= window_s
        assert sim_state(stack)["faults"]["429"] <= 2  # the first attempt's calls only
    assert_ledger_balanced(stack)


def test_a_503_whose_confirm_arrives_late_never_runs_and_the_retry_runs_once(
    stack_factory, broker_proxy
):
    """The broker→client direction stalls (a slow broker, flow control): the client
    gets 503, the job is withdrawn; when the broker delivers it late, no worker runs
    it, nothing is charged, and the client's retry with the same key runs once."""
    stack = stack_factory(**ROOMY, RABBITMQ_URL=broker_proxy.url)
    text = {"naturalLanguage": "Pay the water bill tomorrow"}
    headers = {"Idempotency-Key": "water-bill-1"}
    with client(stack, timeout=30) as http:
        broker_proxy.stall("down")
        try:
            refused = http.post("/api/v1/tasks", json=text, headers=headers)
            assert refused.status_code == 503 and "Retry-After" in refused.headers
            wait_until(lambda: "job withdrawn" in log_of(stack, "tasks"), 60, "the withdraw")
        finally:
            broker_proxy.flow("down")
        # The confirm and the delivery arrive now: the worker is told to skip the job.
        wait_until(lambda: "not runnable" in log_of(stack, "worker"), 60, "the late delivery")
        assert http.get("/api/v1/usage").json()["used"] == 0
        assert all_tasks(http) == []
        wait_until(lambda: http.get("/readyz").status_code == 200, 60, "ready again")
        accepted = http.post("/api/v1/tasks", json=text, headers=headers)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["jobId"]
        [done] = wait_terminal(http, [job_id], 120).values()
        assert done["status"] == "succeeded"
        assert [task["jobId"] for task in all_tasks(http)] == [job_id]  # one task per intent
        replay = http.post("/api/v1/tasks", json=text, headers=headers)
        assert replay.status_code == 202 and replay.json()["jobId"] == job_id
    assert_ledger_balanced(stack)
