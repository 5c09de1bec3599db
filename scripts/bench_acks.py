"""CPU per ack on the local RabbitMQ: one ``basic.ack`` per delivery against the worker's
:class:`~services.worker.acks.Acks` (several in one frame where safe).

    .venv/bin/python scripts/bench_acks.py [--messages 4000] [--turn 8] [--rounds 5]

Publishes ``--messages`` small messages to a queue of its own, consumes them with a prefetch of
64 (``WORKER_CONCURRENCY``'s default) and settles them ``--turn`` at a time, each turn in one
loop turn, as a CompleteJobs batch returns them in the worker. Measured per ack: this
process's CPU (consume and ack; the consume side is the same in both variants) and
RabbitMQ's (``beam.smp``; shared with anything else on the broker, hence the rounds).
Variants run in turns, ``--rounds`` times; prints every figure and each variant's median.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aio_pika

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_procs import cpu_seconds, rabbit_pid  # noqa: E402

from services.worker.acks import Acks  # noqa: E402

URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
PREFETCH = 64


async def _variant(name: str, messages: int, turn: int) -> tuple[float, float]:
    queue_name = f"bench-acks-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect(URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        await channel.declare_queue(queue_name, auto_delete=False)
        try:
            for i in range(messages):
                await channel.default_exchange.publish(
                    aio_pika.Message(b"%d" % i), routing_key=queue_name
                )
            consumer = await connection.channel()
            await consumer.set_qos(prefetch_count=PREFETCH)
            queue = await consumer.get_queue(queue_name)
            acks = Acks()
            held: list[aio_pika.abc.AbstractIncomingMessage] = []
            done = asyncio.Event()
            settled = 0

            async def settle(batch: list[aio_pika.abc.AbstractIncomingMessage]) -> None:
                nonlocal settled
                if name == "single":
                    await asyncio.gather(*(m.ack() for m in batch))
                else:
                    await asyncio.gather(*(acks.ack(m) for m in batch))
                settled += len(batch)
                if settled == messages:
                    done.set()

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                held.append(message)
                if len(held) >= turn or settled + len(held) == messages:
                    batch = held[:]
                    held.clear()
                    await settle(batch)

            rabbit = rabbit_pid()
            ours0, rabbit0 = time.process_time(), cpu_seconds(rabbit) if rabbit else 0.0
            tag = await queue.consume(on_message)
            await asyncio.wait_for(done.wait(), 300)
            ours = time.process_time() - ours0
            theirs = (cpu_seconds(rabbit) - rabbit0) if rabbit else float("nan")
            await queue.cancel(tag)
        finally:
            await channel.queue_delete(queue_name)
    return 1e6 * ours / messages, 1e6 * theirs / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--turn", type=int, default=8, help="deliveries settled per loop turn")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name in ("single", "batched"):
            ours, theirs = asyncio.run(_variant(name, args.messages, args.turn))
            figures.setdefault(name, []).append((ours, theirs))
            print(f"{name:8} client {ours:6.1f} µs/ack   rabbitmq {theirs:6.1f} µs/ack", flush=True)
    for name, values in figures.items():
        ours = statistics.median(v[0] for v in values)
        theirs = statistics.median(v[1] for v in values)
        print(
            f"{name:8} median of {len(values)}: client {ours:6.1f} µs/ack, rabbitmq {theirs:6.1f}"
        )


if __name__ == "__main__":
    main()
