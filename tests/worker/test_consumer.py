"""The worker's consume → settle path on in-memory doubles of the channel,
Tasks and the capability (the real-broker proofs are in tests/faults)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.worker.consumer import JobConsumer
from services.worker.decisions import Transient
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import ATTEMPT_HEADER, OUTCOME_HEADER, REASON_HEADER
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.queue.topology import JobTopology
from taskmesh.tasks.v1 import tasks_pb2
from tests.worker.doubles import (
    FakeChannel,
    FakeMessage,
    FakeRunner,
    FakeTasks,
    a_job,
    delivery_of,
    succeeded,
    usage,
)

pytestmark = pytest.mark.timeout(10)


def make(runner: FakeRunner, tasks: FakeTasks | None = None) -> tuple[JobConsumer, FakeChannel]:
    topology = JobTopology("jobs", policy=RetryPolicy(max_attempts=3))
    consumer = JobConsumer("amqp://unused", topology, runner, tasks or FakeTasks(), concurrency=8)  # type: ignore[arg-type]
    channel = FakeChannel()
    consumer.attach(channel)  # type: ignore[arg-type]
    return consumer, channel


async def deliver(consumer: JobConsumer, *messages: FakeMessage) -> None:
    for message in messages:
        await consumer.deliver(message)  # type: ignore[arg-type]
    assert await consumer.drain(5)


async def test_a_finished_job_is_reported_then_acked():
    tasks = FakeTasks()
    consumer, channel = make(FakeRunner(succeeded), tasks)
    message = delivery_of(a_job())
    await deliver(consumer, message)
    assert [r.job_id for r in tasks.completed] == ["job-1"]
    assert message.acked == 1 and channel.published == []


@pytest.mark.parametrize("defect", [ValueError("bad"), OverflowError("big"), KeyError("x")])
async def test_whatever_the_handler_raises_ends_the_job_charged_in_one_delivery(defect):
    tasks = FakeTasks()
    job = a_job(prior=usage(500, calls=2))
    consumer, channel = make(FakeRunner(lambda _: defect), tasks)
    message = delivery_of(job, attempts=1)
    await deliver(consumer, message)
    [report] = tasks.completed
    assert report.error.type == tasks_pb2.JOB_ERROR_TYPE_INTERNAL
    assert report.usage.input_tokens == 500  # what earlier attempts spent is charged
    assert message.acked == 1 and message.rejected == []  # never requeued
    [dead] = channel.published
    assert dead.routing_key == "jobs-dlq"


async def test_a_transient_failure_goes_to_a_delay_queue_with_its_usage():
    consumer, channel = make(FakeRunner(lambda job: Transient("llm: 500", usage(40))))
    message = delivery_of(a_job())
    await deliver(consumer, message)
    [retry] = channel.published
    assert retry.routing_key == "jobs-retry-1s"
    assert retry.message.headers[ATTEMPT_HEADER] == 1
    assert jobs_pb2.CapabilityJob.FromString(retry.message.body).prior_usage == usage(40)
    assert message.acked == 1


async def test_retry_after_picks_a_delay_queue_at_least_that_long():
    consumer, channel = make(FakeRunner(lambda job: Transient("llm: 429", usage(0), 25.0)))
    await deliver(consumer, delivery_of(a_job()))
    [retry] = channel.published
    assert retry.routing_key == "jobs-retry-30s"


async def test_the_last_attempt_fails_the_job_and_keeps_a_dead_letter():
    tasks = FakeTasks()
    consumer, channel = make(FakeRunner(lambda job: Transient("llm: 500", usage(9))), tasks)
    message = delivery_of(a_job(), attempts=2)
    await deliver(consumer, message)
    [report] = tasks.completed
    assert report.error.type == tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED
    [dead] = channel.published
    assert dead.routing_key == "jobs-dlq" and b"retries_exhausted" in bytes(
        str(dead.message.headers[REASON_HEADER]), "utf-8"
    )


async def test_an_outcome_tasks_could_not_take_is_parked_and_reported_without_a_new_run():
    tasks = FakeTasks()
    runner = FakeRunner(succeeded)
    consumer, channel = make(runner, tasks)
    await deliver(consumer, delivery_of(a_job()))
    tasks.complete_unavailable = True
    await deliver(consumer, delivery_of(a_job("job-2")))
    [parked] = channel.published
    assert OUTCOME_HEADER in parked.message.headers
    tasks.complete_unavailable = False
    await deliver(consumer, FakeMessage(parked.message))
    assert runner.runs == ["job-1", "job-2"]  # job-2 ran once
    assert [r.job_id for r in tasks.completed] == ["job-1", "job-2"]


@pytest.mark.parametrize(
    "state",
    [tasks_pb2.JOB_STATE_SUCCEEDED, tasks_pb2.JOB_STATE_FAILED],
)
async def test_a_job_tasks_says_must_not_run_is_skipped_without_an_llm_call(state):
    runner = FakeRunner(succeeded)
    consumer, channel = make(runner, FakeTasks(states={"job-1": state}))
    message = delivery_of(a_job())
    await deliver(consumer, message)
    assert runner.runs == [] and message.acked == 1 and channel.published == []


async def test_tasks_unavailable_at_start_waits_in_a_delay_queue_without_an_attempt():
    runner = FakeRunner(succeeded)
    consumer, channel = make(runner, FakeTasks(unavailable=True))
    await deliver(consumer, delivery_of(a_job(), attempts=1))
    [wait] = channel.published
    assert runner.runs == []
    assert wait.message.headers[ATTEMPT_HEADER] == 1


async def test_a_tasks_error_at_start_is_settled_not_left_unacked():
    class Broken(FakeTasks):
        async def start_job(self, job_id, request_id, tokens_needed=0):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    tasks = Broken()
    consumer, channel = make(FakeRunner(succeeded), tasks)
    message = delivery_of(a_job())
    await deliver(consumer, message)
    [report] = tasks.completed
    assert report.error.type == tasks_pb2.JOB_ERROR_TYPE_INTERNAL
    assert message.acked == 1


async def test_undecodable_and_unknown_jobs_go_to_the_dlq():
    consumer, channel = make(
        FakeRunner(succeeded), FakeTasks(states={"gone": tasks_pb2.JOB_STATE_UNSPECIFIED})
    )
    garbage = delivery_of(a_job())
    garbage.body = b"\xff\x00 not a protobuf"
    unknown = delivery_of(a_job("gone"))
    await deliver(consumer, garbage, unknown)
    assert [p.routing_key for p in channel.published] == ["jobs-dlq", "jobs-dlq"]
    assert garbage.acked == unknown.acked == 1


async def test_a_lost_connection_at_the_ack_is_a_warning_not_a_crash(caplog):
    tasks = FakeTasks()
    consumer, _ = make(FakeRunner(succeeded), tasks)
    message = delivery_of(a_job(), dead_channel=True)
    with caplog.at_level(logging.WARNING):
        await deliver(consumer, message)
    assert [r.job_id for r in tasks.completed] == ["job-1"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "redelivery follows" in caplog.text


async def test_a_redelivery_of_a_job_still_running_here_never_starts_a_second_run():
    gate = asyncio.Event()
    tasks = FakeTasks()
    runner = FakeRunner(succeeded, gate=gate)
    consumer, _ = make(runner, tasks)
    first = delivery_of(a_job(), dead_channel=True)  # its channel died mid-run
    await consumer.deliver(first)  # type: ignore[arg-type]
    while runner.running == 0:
        await asyncio.sleep(0)
    redelivered = delivery_of(a_job())
    await consumer.deliver(redelivered)  # type: ignore[arg-type]
    gate.set()
    assert await consumer.drain(5)
    assert runner.runs == ["job-1"]
    assert len(tasks.completed) == 1 and redelivered.acked == 1


async def test_a_job_cancelled_while_running_stops_its_run_and_reports_what_it_spent():
    gate = asyncio.Event()  # never opened: the LLM call would hang forever
    tasks = FakeTasks()
    runner = FakeRunner(succeeded, gate=gate)
    runner.spend = 321
    consumer, channel = make(runner, tasks)
    message = delivery_of(a_job(prior=usage(100)))
    await consumer.deliver(message)  # type: ignore[arg-type]
    while runner.running == 0:
        await asyncio.sleep(0)
    tasks.states["job-1"] = tasks_pb2.JOB_STATE_CANCELLED
    await consumer.check_running()
    assert await consumer.drain(5)
    [report] = tasks.reports
    assert report.usage.input_tokens == 100 + 321  # charged to the cancelled job
    assert tasks.completed == [] and message.acked == 1 and channel.published == []


async def test_a_job_cancelled_while_queued_is_skipped_without_an_llm_call():
    runner = FakeRunner(succeeded)
    consumer, _ = make(runner, FakeTasks(states={"job-1": tasks_pb2.JOB_STATE_CANCELLED}))
    message = delivery_of(a_job())
    await deliver(consumer, message)
    assert runner.runs == [] and message.acked == 1


async def test_the_periodic_check_asks_once_for_all_running_jobs():
    gate = asyncio.Event()
    tasks = FakeTasks()
    calls: list[list[str]] = []
    original = tasks.check_jobs

    async def counting(job_ids):  # type: ignore[no-untyped-def]
        calls.append(sorted(job_ids))
        return await original(job_ids)

    tasks.check_jobs = counting  # type: ignore[method-assign]
    runner = FakeRunner(succeeded, gate=gate)
    consumer, _ = make(runner, tasks)
    for n in range(3):
        await consumer.deliver(delivery_of(a_job(f"job-{n}")))  # type: ignore[arg-type]
    while runner.running < 3:
        await asyncio.sleep(0)
    await consumer.check_running()
    assert calls == [["job-0", "job-1", "job-2"]]
    gate.set()
    assert await consumer.drain(5)


async def test_every_call_of_every_attempt_reaches_the_report_itemised():
    """The calls behind a charge travel with it (SPEC §8, `taskmesh ledger check`): a retry
    carries this attempt's calls to the next delivery, and the report lists all of them."""
    tasks = FakeTasks()
    runner = FakeRunner(lambda job: Transient("llm: 500", usage(40)))
    runner.spend = 40
    consumer, channel = make(runner, tasks)
    await deliver(consumer, delivery_of(a_job(), attempts=0))
    [retry] = channel.published
    carried = jobs_pb2.CapabilityJob.FromString(retry.message.body)
    assert [(c.operation, c.input_tokens) for c in carried.prior_calls] == [("core", 40)]

    runner.script = lambda job: succeeded(job, tokens=40 + 25)
    runner.spend = 25
    await deliver(consumer, delivery_of(carried, attempts=1))
    [report] = tasks.completed
    assert [c.input_tokens for c in report.calls] == [40, 25]
    assert sum(c.input_tokens + c.output_tokens for c in report.calls) == (
        report.usage.input_tokens + report.usage.output_tokens
    )


async def test_start_admits_what_earlier_attempts_spent_plus_the_first_calls():
    tasks = FakeTasks()
    runner = FakeRunner(succeeded)
    runner.bound = 2400
    consumer, _ = make(runner, tasks)
    await deliver(consumer, delivery_of(a_job(prior=usage(700)), attempts=1))
    assert tasks.admissions == [("start", 700 + 2400)]
    [guard] = runner.guards
    assert guard.covered == 700 + 2400
