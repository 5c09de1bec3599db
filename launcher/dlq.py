"""``taskmesh dlq list|replay``: what the worker could not finish, and putting
it back once the cause is fixed (SPEC §3, §7).

Listing is read-only: a quorum queue counts every return of a message as a
delivery (and dead-letters it at the limit), so the listing never returns a
message. It takes each message once, publishes an identical copy to the tail
of the DLQ (confirmed), then acks the original: after a full pass the queue
holds the same messages, in the same order, with their delivery counts fresh.

Replay reopens the job through the Tasks service (AdminService.ReopenJob, on the
internal token: a RETRIES_EXHAUSTED or INTERNAL failure goes back to queued with a
fresh reservation) and only then moves the message to the
job queue; a message whose job cannot be re-run stays in the DLQ, and the
command says why."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from launcher.tasks_rpc import Refused, TasksTarget, call_admin, target
from taskmesh.admin.v1 import admin_pb2
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import (
    ATTEMPT_HEADER,
    OUTCOME_HEADER,
    REASON_HEADER,
    WAITS_HEADER,
    UndecodableMessage,
    copy_message,
    decode_job,
)
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import Settings, load_settings

PUBLISH_TIMEOUT_S = 10.0


def _job_id(message: AbstractIncomingMessage) -> str:
    try:
        return decode_job(message).job_id
    except UndecodableMessage:
        return "-"


def _line(message: AbstractIncomingMessage) -> str:
    headers = message.headers or {}
    reason = headers.get(REASON_HEADER, "-")
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return (
        f"{message.message_id or '-'}\t{_job_id(message)}\t{reason}\t"
        f"attempts={headers.get(ATTEMPT_HEADER, 0)!s}"
    )


async def _pass(
    channel: AbstractChannel,
    queue_name: str,
    visit: Callable[[AbstractIncomingMessage], Awaitable[bool]],
) -> int:
    """Takes each message that is in the queue now exactly once and hands it to
    ``visit(message) -> bool`` (True: the message leaves the DLQ). A kept message is
    re-published to the tail before the original is acked. Returns messages seen."""
    queue = await channel.declare_queue(queue_name, passive=True)
    # A passive declare always reports the count; the type allows its absence.
    count = queue.declaration_result.message_count or 0
    seen = 0
    while seen < count:
        message = await queue.get(no_ack=False, fail=False, timeout=5)
        if message is None:
            break
        seen += 1
        if not await visit(message):
            await channel.default_exchange.publish(
                copy_message(message, dict(message.headers or {})),
                routing_key=queue_name,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT_S,
            )
        await message.ack()
    return seen


async def _reopen(where: TasksTarget, job_id: str) -> str | None:
    """Reopens the job through the Tasks service; None when it may run again, else
    why not (the service's reason, or that it does not answer)."""
    try:
        await call_admin(
            where,
            lambda stub: stub.ReopenJob(
                admin_pb2.ReopenJobRequest(job_id=job_id), **where.options()
            ),
        )
    except Refused as exc:
        return exc.message
    return None


async def _run(args: argparse.Namespace) -> int:
    settings: Settings = load_settings()
    topology = JobTopology(settings.job_queue)
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare(channel)
        if args.action == "list":

            async def show(message: AbstractIncomingMessage) -> bool:
                print(_line(message))
                return False

            seen = await _pass(channel, topology.dlq, show)
            # The queue follows JOB_QUEUE: name it, so an empty list is never a wrong queue.
            print(f"{seen} dead-lettered in {topology.dlq}", file=sys.stderr)
            return 0
        if not args.all and not args.ids:
            print("taskmesh: give message ids or --all", file=sys.stderr)
            return 2
        # Replay reopens jobs in Tasks: without the token, say so before taking a message.
        where = target()
        wanted = set(args.ids)
        found: set[str] = set()
        replayed = kept = 0

        async def replay(message: AbstractIncomingMessage) -> bool:
            nonlocal replayed, kept
            mid = message.message_id or "-"
            if not (args.all or mid in wanted):
                return False
            found.add(mid)
            try:
                job = decode_job(message)
            except UndecodableMessage as exc:
                print(f"{mid}\tkept\t{exc}")
                kept += 1
                return False
            refusal = await _reopen(where, job.job_id)
            if refusal is not None:
                print(f"{mid}\tkept\t{refusal}")
                kept += 1
                return False
            # A fresh run: its earlier attempts were charged when the job failed.
            job.ClearField("prior_usage")
            job.ClearField("prior_calls")
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = 0
            headers[WAITS_HEADER] = 0
            for name in (REASON_HEADER, OUTCOME_HEADER):
                headers.pop(name, None)
            fresh = aio_pika.Message(
                body=job.SerializeToString(),
                content_type=message.content_type,
                type=message.type or jobs_pb2.CapabilityJob.DESCRIPTOR.full_name,
                message_id=message.message_id,
                correlation_id=message.correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=headers,
            )
            await channel.default_exchange.publish(
                fresh, routing_key=topology.queue, mandatory=True, timeout=PUBLISH_TIMEOUT_S
            )
            print(f"{mid}\treplayed")
            replayed += 1
            return True

        await _pass(channel, topology.dlq, replay)
        missing = sorted(wanted - found)
        for mid in missing:
            print(f"{mid}\tnot found in the dead-letter queue")
        print(
            f"replayed {replayed} into {topology.queue}, kept {kept} in {topology.dlq}",
            file=sys.stderr,
        )
        return 1 if missing or kept else 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except Refused as exc:
        print(f"taskmesh: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except (aio_pika.exceptions.AMQPError, OSError) as exc:
        print(f"taskmesh: broker unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
