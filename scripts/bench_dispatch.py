"""Micro-benchmark of the Tasks → AI → RabbitMQ hop, in one process (prints figures).

Usage: python scripts/bench_dispatch.py [--jobs 1000] [--concurrency 64] [--rounds 3]

- ``publish``: CPU ms per job of the AMQP publish with confirms (``JobPublisher.publish``)
  alone: each confirm awaited in turn, vs ``concurrency`` publishes sent together and their
  confirms gathered (what ``CapabilityExecutor.enqueue_many`` does). RabbitMQ's own CPU is
  read from /proc.
- ``hop``: CPU ms per job of the whole hop (client and servicer in this process: the
  Tasks and AI sides together, RabbitMQ apart), ``concurrency`` dispatches in flight:
  one unary ExecuteCapability per job vs ``AiDispatcher`` coalescing them into
  ExecuteCapabilities calls. The screen runs for real; the texts are ordinary tasks (its
  clear-pass gate decides them without the model).

Rounds alternate the variants (A B A B ...) and the medians are printed; CPU is process
time (user + system), so other load on the machine moves it less than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_procs import cpu_seconds, rabbit_pid  # noqa: E402

from services.ai.domain.execute import CapabilityExecutor, Enqueue  # noqa: E402
from services.ai.domain.screening import default_screener  # noqa: E402
from services.ai.messaging.publisher import JobPublisher  # noqa: E402
from services.ai.transport.servicer import SERVICE_NAME, AiServicer, registrar  # noqa: E402
from services.tasks.domain import models as m  # noqa: E402
from services.tasks.transport.ai_client import AiDispatcher  # noqa: E402
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc  # noqa: E402
from taskmesh.capabilities.parse_task.config import default_config  # noqa: E402
from taskmesh.jobs.v1 import jobs_pb2  # noqa: E402
from taskmesh.queue.topology import JobTopology  # noqa: E402
from taskmesh.rpc import client, server  # noqa: E402
from taskmesh.rpc.calls import REQUEST_ID_KEY  # noqa: E402

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
TOKEN = "bench-token-0123456789"
TEXTS = [
    "Pay the electricity bill tomorrow",
    "Plan the team offsite next month with budget approval and venue booking",
    "Book a dentist appointment for next Tuesday",
    "Renew the car insurance before Friday",
]


def _item(i: int) -> Enqueue:
    return Enqueue(
        job_id=str(uuid.uuid4()),
        user_id="bench",
        capability=jobs_pb2.CAPABILITY_PARSE_TASK,
        task_input=jobs_pb2.ParseTaskInput(
            natural_language=TEXTS[i % len(TEXTS)], config=default_config()
        ),
        reservation=jobs_pb2.Reservation(tokens=2500),
        request_id=str(uuid.uuid4()),
    )


async def _measured(run: Callable[[], Awaitable[None]], jobs: int) -> tuple[float, float]:
    """(this process's CPU ms per job, RabbitMQ's CPU ms per job) of ``run``."""
    rabbit = rabbit_pid()
    broker_before = cpu_seconds(rabbit) if rabbit else 0.0
    before = time.process_time()
    await run()
    own = (time.process_time() - before) / jobs * 1000
    broker = ((cpu_seconds(rabbit) - broker_before) / jobs * 1000) if rabbit else 0.0
    return own, broker


async def _in_chunks(jobs: int, size: int, one: Callable[[int], Awaitable[object]]) -> None:
    for start in range(0, jobs, size):
        await asyncio.gather(*(one(i) for i in range(start, min(jobs, start + size))))


async def bench_publish(args: argparse.Namespace, publisher: JobPublisher) -> None:
    def jobs(start: int) -> list[jobs_pb2.CapabilityJob]:
        out = []
        for i in range(start, min(args.jobs, start + args.concurrency)):
            item = _item(i)
            out.append(
                jobs_pb2.CapabilityJob(
                    job_id=item.job_id,
                    user_id=item.user_id,
                    capability=item.capability,
                    parse_task=item.task_input,
                    request_id=item.request_id or "",
                    reservation=item.reservation,
                )
            )
        return out

    async def each_in_turn() -> None:
        for start in range(0, args.jobs, args.concurrency):
            for job in jobs(start):
                await publisher.publish(job, timeout=10)

    async def gathered() -> None:
        for start in range(0, args.jobs, args.concurrency):
            await asyncio.gather(*(publisher.publish(job, timeout=10) for job in jobs(start)))

    await _rounds("publish", args, {"each confirm in turn": each_in_turn, "gathered": gathered})


async def bench_hop(args: argparse.Namespace, port: int) -> None:
    now = datetime.now(UTC)
    reservation = m.ReservationInfo(tokens=2500, window_start=int(now.timestamp()))
    channel = client.channel(f"127.0.0.1:{port}", token=TOKEN)
    stub = ai_pb2_grpc.AiServiceStub(channel)
    dispatcher = AiDispatcher(channel)

    def job(i: int) -> m.Job:
        return m.Job(
            str(uuid.uuid4()), "bench", m.JobState.QUEUED, TEXTS[i % len(TEXTS)],
            str(uuid.uuid4()), 0, 1, now, now,
        )  # fmt: skip

    async def unary_one(i: int) -> None:
        # What main's AiDispatcher sent: one ExecuteCapability per job, default_config() each.
        j = job(i)
        request = ai_pb2.ExecuteCapabilityRequest(
            capability=jobs_pb2.CAPABILITY_PARSE_TASK,
            pattern=ai_pb2.EXECUTION_PATTERN_ASYNC,
            job_id=j.id,
            user_id=j.user_id,
            parse_task=jobs_pb2.ParseTaskInput(
                natural_language=j.natural_language, config=default_config()
            ),
            reservation=jobs_pb2.Reservation(tokens=2500),
        )
        await stub.ExecuteCapability(
            request, timeout=10, metadata=((REQUEST_ID_KEY, j.request_id),)
        )

    async def unary() -> None:
        await _in_chunks(args.jobs, args.concurrency, unary_one)

    async def batched() -> None:
        await _in_chunks(
            args.jobs, args.concurrency, lambda i: dispatcher.dispatch(job(i), reservation, 10)
        )

    try:
        await _rounds("hop", args, {"unary": unary, "batched": batched})
    finally:
        await channel.close()


async def _rounds(
    name: str, args: argparse.Namespace, variants: dict[str, Callable[[], Awaitable[None]]]
) -> None:
    figures: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant, run in variants.items():
            figures[variant].append(await _measured(run, args.jobs))
            await _purge(args.queue)
    print(f"{name}: CPU ms per job, median of {args.rounds} (this process | RabbitMQ)")
    for variant, runs in figures.items():
        own = statistics.median(r[0] for r in runs)
        broker = statistics.median(r[1] for r in runs)
        print(f"  {variant:<22}{own:8.3f} | {broker:6.3f}")


async def _purge(queue: str) -> None:
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await (await channel.get_queue(queue)).purge()


async def main(args: argparse.Namespace) -> None:
    topology = JobTopology(args.queue)
    publisher = JobPublisher(RABBITMQ_URL, topology)
    await publisher.connect()
    executor = CapabilityExecutor(publisher, None, "m", screener=default_screener())  # type: ignore[arg-type]
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(AiServicer(executor))], [SERVICE_NAME]
    )
    try:
        if "publish" in args.only:
            await bench_publish(args, publisher)
        if "hop" in args.only:
            await bench_hop(args, port)
    finally:
        await grpc_server.stop(None)
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            await topology.delete(await connection.channel())
        await publisher.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per round (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight (%(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant (%(default)s)")
    parser.add_argument("--only", default="publish,hop", help="sections (%(default)s)")
    parsed = parser.parse_args()
    parsed.queue = f"bench-dispatch-{uuid.uuid4().hex[:8]}"
    import uvloop

    uvloop.run(main(parsed))
