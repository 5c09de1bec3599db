"""Delivery guarantees under faults (SPEC §7–§8), on the real processes and
the real RabbitMQ. Each test ends with every accepted job terminal, exactly
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

from tests.e2e.checks import (
    assert_exactly_once,
    assert_ledger_balanced,
    client,
    jobs,
    sentences,
    submit,
    wait_terminal,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]


#: Room for many jobs and many status reads; these tests are about delivery.
ROOMY = {
    "TOKEN_WINDOW_LIMIT": "100000000",
    "RATE_LIMIT_BUCKET_SIZE": "1000000",
    "RATE_LIMIT_REFILL_PER_S": "1000000",
}


def running_count(http: httpx.Client, ids: list[str]) -> int:
    return sum(job["status"] == "running" for job in jobs(http, ids).values())


def test_worker_killed_mid_job_loses_nothing(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--latency-ms", "2000"], WORKER_CONCURRENCY="100")
    with client(stack) as http:
        ids = submit(http, sentences(60))
        assert len(ids) == 60
        wait_until(lambda: running_count(http, ids) >= 50, 60, "50 jobs in flight")
        stack.stack.signal("worker", signal.SIGKILL)
        stack.stack.wait("worker", 10)
        stack.stack.start("worker")
        final = wait_terminal(http, ids, 120)
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
        final = wait_terminal(http, ids, 180)
        failed = [job for job in final.values() if job["status"] == "failed"]
        assert all(job["error"]["type"] == "RETRIES_EXHAUSTED" for job in failed)
        assert len(failed) <= 2
        assert any(job["attempts"] > 1 for job in final.values()), "no fault was retried"
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_tasks_down_for_ten_seconds_while_the_worker_completes(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--latency-ms", "1500"])
    with client(stack) as http:
        ids = submit(http, sentences(30))
        wait_until(lambda: running_count(http, ids) >= 20, 60, "jobs in flight")
    stack.stack.signal("tasks", signal.SIGTERM)
    assert stack.stack.wait("tasks", 30) == 0
    time.sleep(10)  # the outage itself: completions meet a Tasks service that is gone
    stack.stack.start("tasks")
    with client(stack) as http:
        wait_until(lambda: http.get("/readyz").status_code == 200, 60, "tasks back")
        final = wait_terminal(http, ids, 120)
        assert all(job["status"] == "succeeded" for job in final.values())
        # Finished outcomes waited in the retry queue: no job was run twice.
        assert all(job["attempts"] == 1 for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_broker_restart_mid_run(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--latency-ms", "500"])
    with client(stack) as http:
        ids = submit(http, sentences(40))
        wait_until(lambda: running_count(http, ids) >= 10, 60, "jobs in flight")
        rabbitmqctl("stop_app")
        try:
            # Readiness tells the truth while the broker is away, and nothing
            # is accepted that could not be queued.
            wait_until(lambda: http.get("/readyz").status_code == 503, 30, "readyz 503")
            refused = http.post(
                "/api/v1/tasks", json={"naturalLanguage": "Book dentist appointment"}
            )
            assert refused.status_code == 503 and "Retry-After" in refused.headers
        finally:
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")
        wait_until(lambda: http.get("/readyz").status_code == 200, 90, "readyz 200 again")
        more = submit(http, sentences(10, "Book a venue for the team offsite"))
        assert len(more) == 10, "publishing did not resume"
        final = wait_terminal(http, ids + more, 180)
        assert all(job["status"] == "succeeded" for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


def test_worker_sigterm_finishes_in_flight_jobs(stack_factory):
    stack = stack_factory(**ROOMY, sim_args=["--latency-ms", "1500"], SHUTDOWN_GRACE_S="20")
    with client(stack) as http:
        ids = submit(http, sentences(10))
        wait_until(lambda: running_count(http, ids) == 10, 60, "10 jobs in flight")
        stack.stack.signal("worker", signal.SIGTERM)
        assert stack.stack.wait("worker", 30) == 0
        # No worker runs now: whatever finished, finished during the grace period.
        final = jobs(http, ids)
        assert all(job["status"] == "succeeded" for job in final.values())
        assert_exactly_once(http, final)
    assert_ledger_balanced(stack)


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
    listed = subprocess.run(
        [sys.executable, "-m", "taskmesh.cli", "dlq", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [row for row in listed.stdout.splitlines() if row.startswith("garbage-1")]
    assert "undecodable" in line

    # A redelivered message of a finished job: no second task, no LLM run.
    from taskmesh.jobs.v1 import jobs_pb2

    duplicate = jobs_pb2.CapabilityJob(job_id=done_id, user_id="ignored", request_id="dup")
    duplicate.parse_task.natural_language = "Pay electricity bill tomorrow"
    duplicate.capability = jobs_pb2.CAPABILITY_PARSE_TASK
    asyncio.run(publish(duplicate.SerializeToString(), done_id))
    worker_log = stack.log_dir / "worker.log"
    wait_until(lambda: "already finished" in worker_log.read_text(), 30, "the duplicate skipped")
    with client(stack) as http:
        assert_exactly_once(http, {done_id: done, after_id: after})
    assert_ledger_balanced(stack)

    replayed = subprocess.run(
        [sys.executable, "-m", "taskmesh.cli", "dlq", "replay", "garbage-1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stderr
