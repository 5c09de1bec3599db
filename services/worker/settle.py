"""Executes a decision of decisions.py on the broker and Tasks, then acks.

A message is acked only after its outcome is durable somewhere: CompleteJob
returned, or a confirmed publish to a delay queue or the DLQ. If the broker
connection is gone by then, the ack is skipped: the broker redelivers the
unacked message, and the redelivery finds the job finished (at-least-once
delivery, exactly-once effect)."""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError
from aiormq.exceptions import ChannelInvalidStateError

from services.worker.acks import Acks
from services.worker.completion import TasksCallback
from services.worker.decisions import (
    Complete,
    DeadLetter,
    Decision,
    Delivery,
    Reason,
    RetryAt,
    Skip,
    TasksUnavailable,
    decide,
)
from services.worker.hooks import WorkerHooks
from taskmesh import errors, job_states
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import ATTEMPT_HEADER, REASON_HEADER, copy_message, job_message
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import default

log = logging.getLogger(__name__)

#: What a closed channel or connection raises on ack/publish.
CONNECTION_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError)


class Settler:
    """Carries out decisions on ``channel`` (publisher confirms) and Tasks, then acks through
    ``acks`` (a fresh :class:`Acks` when None; the consumer shares its own)."""

    def __init__(
        self,
        channel: AbstractChannel,
        topology: JobTopology,
        policy: RetryPolicy,
        tasks: TasksCallback,
        hooks: WorkerHooks,
        *,
        publish_timeout_s: float = default("worker_publish_timeout_s"),
        acks: Acks | None = None,
    ) -> None:
        self.publish_timeout_s = publish_timeout_s
        self.acks = acks if acks is not None else Acks()
        self._channel = channel
        self.topology = topology
        self.policy = policy
        self.tasks = tasks
        self.hooks = hooks

    async def settle(
        self,
        message: AbstractIncomingMessage,
        job: jobs_pb2.CapabilityJob | None,
        delivery: Delivery,
        decision: Decision,
    ) -> Decision:
        """Carries ``decision`` out and acks; returns the decision taken (a report
        that met an unavailable Tasks becomes a parked RetryAt)."""
        if isinstance(decision, Complete):
            assert job is not None
            decision = await self._complete(message, job, delivery, decision)
        if isinstance(decision, RetryAt):
            assert job is not None
            await self._retry(job, decision)
        elif isinstance(decision, DeadLetter):
            await self._dead_letter(message, decision.reason, decision.detail, delivery.attempts)
        elif isinstance(decision, Skip):
            log.info("job not runnable; skipping", extra={"reason": decision.reason.value})
        self.hooks.settled(decision)
        await ack(message, self.acks)
        return decision

    async def _complete(
        self,
        message: AbstractIncomingMessage,
        job: jobs_pb2.CapabilityJob,
        delivery: Delivery,
        decision: Complete,
    ) -> Decision:
        try:
            response = await self.tasks.complete_job(decision.request, job.request_id)
        except errors.Unavailable:
            # Park the finished outcome in a delay queue rather than hold the message.
            return decide(job.job_id, TasksUnavailable(decision.request), delivery, self.policy)
        except errors.NotFound:
            return DeadLetter(Reason.UNKNOWN_JOB, "unknown job")
        self.hooks.completed(job, response)
        log.info(
            "job completed",
            extra={
                "outcome": job_states.status_name(response.job.state),
                "reason": decision.reason.value,
                "applied": response.applied,
            },
        )
        if decision.dead_letter and response.applied:
            detail = f"{decision.reason.value}: {decision.request.error.message}"[:500]
            await self._dead_letter(message, decision.reason, detail, delivery.attempts + 1)
        return decision

    async def _retry(self, job: jobs_pb2.CapabilityJob, decision: RetryAt) -> None:
        queue, ttl = self.topology.retry_queue_for(decision.delay_s)
        if decision.usage is not None:
            job = _with_usage(job, decision.usage, decision.calls)
        await self._channel.default_exchange.publish(
            job_message(
                job,
                attempts=decision.attempts,
                reason=decision.reason.value,
                outcome=decision.outcome,
                waits=decision.waits,
            ),
            routing_key=queue,
            mandatory=True,
            timeout=self.publish_timeout_s,
        )
        log.info(
            "retrying in %ss",
            ttl,
            extra={"reason": decision.reason.value, "attempts": decision.attempts},
        )

    async def _dead_letter(
        self, message: AbstractIncomingMessage, reason: Reason, detail: str, attempts: int
    ) -> None:
        """Copies the delivery, as it is, to the DLQ with the reason in headers."""
        headers = dict(message.headers or {})
        headers[REASON_HEADER] = detail
        headers[ATTEMPT_HEADER] = attempts
        await self._channel.default_exchange.publish(
            copy_message(message, headers),
            routing_key=self.topology.dlq,
            mandatory=True,
            timeout=self.publish_timeout_s,
        )
        log.warning("dead-lettered", extra={"reason": reason.value, "attempts": attempts})


async def ack(message: AbstractIncomingMessage, acks: Acks) -> None:
    """Acks through ``acks`` (see :class:`Acks`); a channel that died meanwhile is not an
    error (redelivery follows)."""
    try:
        await acks.ack(message)
    except CONNECTION_ERRORS as exc:
        log.warning("connection lost before the ack (%s); redelivery follows", type(exc).__name__)


def _with_usage(
    job: jobs_pb2.CapabilityJob,
    usage: jobs_pb2.TokenUsage,
    calls: tuple[jobs_pb2.LlmCallUsage, ...] = (),
) -> jobs_pb2.CapabilityJob:
    copy = jobs_pb2.CapabilityJob()
    copy.CopyFrom(job)
    copy.prior_usage.CopyFrom(usage)
    del copy.prior_calls[:]
    copy.prior_calls.extend(calls)
    return copy
