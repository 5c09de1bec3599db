"""consume → run → complete → ack.

Every delivery is handled in its own task (up to the prefetch). A message is
acked only after its outcome is durable somewhere: CompleteJob returned OK,
or a confirmed publish to a retry queue or the DLQ. Anything else leaves it
unacked, and the broker redelivers it (to this worker after a reconnect, or
to another one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from datetime import UTC

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import AMQPError
from google.protobuf.timestamp_pb2 import Timestamp

from services.worker.completion import TasksCallback
from services.worker.retries import RetryPolicy
from services.worker.runner import CapabilityRunner, Transient, add_usage, failure
from taskmesh import errors, metrics
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.logs import bind
from taskmesh.queue.connection import connect_with_retry
from taskmesh.queue.messages import (
    UndecodableMessage,
    attempts_of,
    decode_job,
    pending_outcome,
    waits_of,
)
from taskmesh.queue.topology import JobTopology
from taskmesh.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)

_TERMINAL = (tasks_pb2.JOB_STATE_SUCCEEDED, tasks_pb2.JOB_STATE_FAILED)
_OUTCOME = {
    tasks_pb2.JOB_STATE_SUCCEEDED: "succeeded",
    tasks_pb2.JOB_STATE_FAILED: "failed",
}


class JobConsumer:
    def __init__(
        self,
        url: str,
        topology: JobTopology,
        runner: CapabilityRunner,
        tasks: TasksCallback,
        *,
        concurrency: int,
        max_attempts: int,
    ) -> None:
        self._url = url
        self.topology = topology
        self.runner = runner
        self.tasks = tasks
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self._connection: AbstractRobustConnection | None = None
        self._retries: RetryPolicy | None = None
        self._consumer_tag: str | None = None
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self._connection, _ = await connect_with_retry(self._url, self._setup, stop)

    async def _setup(self, connection: AbstractRobustConnection) -> None:
        # Robust channels re-declare the queue and re-register the consumer
        # after a reconnect.
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=self.concurrency)
        publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._retries = RetryPolicy(publish_channel, self.topology, self.max_attempts)
        self._queue = await self.topology.declare(consume_channel)
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop_consuming(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception:  # noqa: BLE001 - the connection may be gone; nothing to cancel
                log.warning("could not cancel the consumer")
            self._consumer_tag = None

    async def drain(self, grace_s: float) -> bool:
        """Waits for in-flight jobs; True if all finished within ``grace_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._connection is not None:
            # Unacked deliveries go back to the queue when the channel closes.
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(message))
        self._in_flight.add(task)
        self._idle.clear()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not self._in_flight:
            self._idle.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("job handler crashed", exc_info=task.exception())

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        assert self._retries is not None
        attempts = attempts_of(message)
        try:
            job = decode_job(message)
        except UndecodableMessage as exc:
            await self._settle(
                message, self._retries.dead_letter(message, f"undecodable: {exc}", attempts)
            )
            return
        with bind(request_id=job.request_id or None, job_id=job.job_id):
            try:
                await self._process(message, job, attempts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _connection_lost(exc, message):
                    # The broker requeues unacked deliveries of a closed channel.
                    log.warning(
                        "connection lost mid-job (%s); redelivery follows", type(exc).__name__
                    )
                    return
                # A defect, not a transient fault: requeue, and let the queue's
                # delivery limit dead-letter a message that fails every time.
                log.exception("job handling failed; requeueing the message")
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)

    async def _settle(self, message: AbstractIncomingMessage, publish: Awaitable[None]) -> None:
        """Acks after the publish that takes over the message was confirmed."""
        await publish
        await message.ack()

    async def _process(
        self, message: AbstractIncomingMessage, job: jobs_pb2.CapabilityJob, attempts: int
    ) -> None:
        assert self._retries is not None
        pending = pending_outcome(message)
        if pending is not None:
            # The LLM already ran; only the report to Tasks is missing.
            request = tasks_pb2.CompleteJobRequest.FromString(pending)
            await self._report(message, job, attempts, request)
            return
        try:
            state = await self.tasks.start_job(job.job_id, job.request_id)
        except errors.NotFound:
            await self._settle(message, self._retries.dead_letter(message, "unknown job", attempts))
            return
        except errors.Unavailable:
            waits = waits_of(message) + 1
            await self._settle(
                message, self._retries.retry_later(job, attempts, "tasks unavailable", waits=waits)
            )
            return
        if state.state in _TERMINAL:
            log.info("job already finished; skipping")
            await message.ack()
            return
        metrics.jobs_started.inc()
        if job.HasField("enqueue_time") and attempts == 0:
            metrics.job_queue_wait.observe(_seconds_since(job.enqueue_time))

        outcome = await self.runner.run(job)
        attempts += 1
        if isinstance(outcome, Transient):
            spent = add_usage(job.prior_usage, outcome.usage)
            if not self._retries.exhausted(attempts):
                retry = jobs_pb2.CapabilityJob()
                retry.CopyFrom(job)
                retry.prior_usage.CopyFrom(spent)
                await self._settle(
                    message, self._retries.retry_later(retry, attempts, outcome.reason)
                )
                return
            outcome = failure(
                job.job_id,
                tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED,
                f"The job failed {attempts} times; the last error was: {outcome.reason}",
                spent,
            )
        await self._report(message, job, attempts, outcome)

    async def _report(
        self,
        message: AbstractIncomingMessage,
        job: jobs_pb2.CapabilityJob,
        attempts: int,
        request: tasks_pb2.CompleteJobRequest,
    ) -> None:
        """CompleteJob, then ack. Tasks still unavailable after the callback's
        own retries: park the outcome in a retry queue instead of holding it."""
        assert self._retries is not None
        try:
            response = await self.tasks.complete_job(request, job.request_id)
        except errors.Unavailable:
            await self._settle(
                message,
                self._retries.retry_later(
                    job,
                    attempts,
                    "tasks unavailable",
                    outcome=request.SerializeToString(),
                    waits=waits_of(message) + 1,
                ),
            )
            return
        self._observe(job, response)
        if request.error.type == tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED:
            await self._retries.dead_letter(
                message, f"retries exhausted: {request.error.message}"[:500], attempts
            )
        await message.ack()

    def _observe(
        self, job: jobs_pb2.CapabilityJob, response: tasks_pb2.CompleteJobResponse
    ) -> None:
        outcome = _OUTCOME.get(response.job.state, "unknown")
        if response.applied:
            metrics.jobs_completed.labels(outcome).inc()
            if response.job.error.type == tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT:
                metrics.vague_inputs.inc()
            if job.HasField("enqueue_time"):
                metrics.job_end_to_end.observe(_seconds_since(job.enqueue_time))
        log.info("job completed", extra={"outcome": outcome, "applied": response.applied})


def _connection_lost(exc: Exception, message: AbstractIncomingMessage) -> bool:
    return isinstance(exc, AMQPError | RuntimeError | ConnectionError) and bool(
        message.channel.is_closed
    )


def _seconds_since(stamp: Timestamp) -> float:
    return max(0.0, time.time() - stamp.ToDatetime(UTC).timestamp())
