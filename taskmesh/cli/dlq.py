"""``taskmesh dlq list|replay``: what the worker could not finish, and putting
it back once the cause is fixed."""

from __future__ import annotations

import argparse
import asyncio
import sys

import aio_pika

from taskmesh.queue.messages import ATTEMPT_HEADER, REASON_HEADER, WAITS_HEADER, copy_message
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import load_settings


def _job_id(message: aio_pika.abc.AbstractIncomingMessage) -> str:
    from taskmesh.queue.messages import UndecodableMessage, decode_job

    try:
        return decode_job(message).job_id
    except UndecodableMessage:
        return "-"


async def _drain(channel, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:  # type: ignore[no-untyped-def]
    queue = await channel.get_queue(queue_name, ensure=True)
    out = []
    while (message := await queue.get(no_ack=False, fail=False, timeout=5)) is not None:
        out.append(message)
    return out


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    topology = JobTopology(settings.job_queue)
    connection = await aio_pika.connect(settings.rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await topology.declare(channel)
        # Unacked gets are returned to the DLQ when the channel closes, so a
        # listing changes nothing.
        messages = await _drain(channel, topology.dlq)
        if args.action == "list":
            for msg in messages:
                headers = msg.headers or {}
                reason = headers.get(REASON_HEADER, "-")
                if isinstance(reason, bytes):
                    reason = reason.decode(errors="replace")
                print(
                    f"{msg.message_id or '-'}\t{_job_id(msg)}\t{reason}\t"
                    f"attempts={headers.get(ATTEMPT_HEADER, 0)}"
                )
            print(f"{len(messages)} dead-lettered", file=sys.stderr)
            return 0
        if not args.all and not args.ids:
            print("taskmesh: give message ids or --all", file=sys.stderr)
            return 2
        wanted = set(args.ids)
        replayed = 0
        for msg in messages:
            if args.all or msg.message_id in wanted:
                headers = dict(msg.headers or {})
                headers[ATTEMPT_HEADER] = 0
                headers[WAITS_HEADER] = 0
                headers.pop(REASON_HEADER, None)
                await channel.default_exchange.publish(
                    copy_message(msg, headers),
                    routing_key=topology.queue,
                    mandatory=True,
                    timeout=10,
                )
                await msg.ack()
                replayed += 1
        missing = wanted - {m.message_id for m in messages}
        for mid in sorted(missing):
            print(f"taskmesh: no dead-lettered message {mid}", file=sys.stderr)
        print(f"replayed {replayed}", file=sys.stderr)
        return 1 if missing else 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (aio_pika.exceptions.AMQPError, OSError) as exc:
        print(f"taskmesh: broker unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
