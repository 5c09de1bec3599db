"""consume → settle → drain.

Every delivery is handled in its own task (up to the prefetch): decode, the
handler's outcome (handling.py), the decision (decisions.py), carried out and
acked (settle.py). A delivery of a job this worker is still running waits for
that run to end, so a redelivery after a lost connection never starts a second
LLM run of the same job here (it then finds the job finished and is skipped).

Cancellation: every CHECK_INTERVAL_S the worker asks Tasks for the states of
all the jobs it is running, in one call (CheckJobs); a run whose job was
cancelled is stopped, and what it spent (abandoned calls at their bound) is
reported so Tasks charges it."""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from services.worker.acks import Acks
from services.worker.completion import TasksCallback
from services.worker.decisions import (
    Crashed,
    Decision,
    Delivery,
    Outcome,
    Stopped,
    Undecodable,
    decide,
    itemise,
)
from services.worker.handling import JobHandler
from services.worker.hooks import PrometheusHooks, WorkerHooks
from services.worker.runner import CapabilityRunner, add_usage
from services.worker.settle import CONNECTION_ERRORS, Settler
from taskmesh.capabilities.errors import UsageMeter
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.logs import bind
from taskmesh.queue.connection import cancel_consumer, connect_with_retry
from taskmesh.queue.in_flight import InFlight
from taskmesh.queue.messages import (
    UndecodableMessage,
    attempts_of,
    decode_job,
    pending_outcome,
    waits_of,
)
from taskmesh.queue.topology import JobTopology
from taskmesh.settings import default
from taskmesh.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)

#: Seconds between two batched checks of the running jobs' states (SPEC §5:
#: a cancelled job's LLM calls stop within about a second).
CHECK_INTERVAL_S = 0.5


def read_delivery(message: AbstractIncomingMessage) -> Delivery:
    return Delivery(attempts_of(message), waits_of(message), pending_outcome(message))


class JobConsumer:
    """Consumes ``topology.queue`` with prefetch ``concurrency``; ``hooks`` receive
    what happens (PrometheusHooks by default). ``start`` connects (retrying until
    ``stop``), ``stop_consuming`` + ``drain(grace_s)`` + ``close`` shut it down."""

    def __init__(
        self,
        url: str,
        topology: JobTopology,
        runner: CapabilityRunner,
        tasks: TasksCallback,
        *,
        concurrency: int,
        hooks: WorkerHooks | None = None,
        publish_timeout_s: float = default("worker_publish_timeout_s"),
        connect_timeout_s: float = default("broker_connect_timeout_s"),
    ) -> None:
        self.publish_timeout_s = publish_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._url = url
        self.topology = topology
        self.policy = topology.policy
        self.tasks = tasks
        self.hooks = hooks or PrometheusHooks()
        self.handler = JobHandler(runner, tasks, self.hooks)
        self.concurrency = concurrency
        self.settler: Settler | None = None
        self._connection: AbstractRobustConnection | None = None
        self._consumer_tag: str | None = None
        self._queue: AbstractQueue | None = None
        self._in_flight = InFlight("job")
        #: Acks of this consumer's deliveries, several in one frame where safe (acks.py).
        self.acks = Acks()
        #: job id → the task handling its delivery in this process.
        self._running: dict[str, asyncio.Task[None]] = {}
        #: job id → the task running its capability (what a cancellation stops).
        self._runs: dict[str, asyncio.Task[Outcome]] = {}
        self._stopped: set[str] = set()
        self._watch: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def start(self, stop: asyncio.Event | None = None) -> None:
        self._connection, _ = await connect_with_retry(
            self._url, self._setup, stop, timeout_s=self.connect_timeout_s
        )
        self.watch_cancellations()

    def watch_cancellations(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        """Starts the periodic, batched check of the running jobs' states."""
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop(interval_s))

    async def _watch_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.check_running()

    async def check_running(self) -> None:
        """One check: stops the runs of jobs Tasks says must not go on."""
        job_ids = list(self._runs)
        if not job_ids:
            return
        try:
            states = await self.tasks.check_jobs(job_ids)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            log.warning("could not check running jobs (%s)", type(exc).__name__)
            return
        for job_id, state in states.items():
            run = self._runs.get(job_id)
            if run is not None and state == tasks_pb2.JOB_STATE_CANCELLED and not run.done():
                with bind(job_id=job_id):
                    log.info("job cancelled; stopping its run")
                self._stopped.add(job_id)
                run.cancel()

    async def _setup(self, connection: AbstractRobustConnection) -> None:
        # Robust channels re-declare the queue and re-register the consumer
        # after a reconnect.
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=self.concurrency)
        publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self.attach(publish_channel)
        self._queue = await self.topology.declare(consume_channel)
        self._consumer_tag = await self._queue.consume(self.deliver)

    def attach(self, publish_channel: AbstractChannel) -> None:
        """Uses ``publish_channel`` (with publisher confirms) for retries and dead letters."""
        self.settler = Settler(
            publish_channel,
            self.topology,
            self.policy,
            self.tasks,
            self.hooks,
            publish_timeout_s=self.publish_timeout_s,
            acks=self.acks,
        )

    async def stop_consuming(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            await cancel_consumer(self._queue, self._consumer_tag, self.publish_timeout_s)
            self._consumer_tag = None

    async def drain(self, grace_s: float) -> bool:
        """Waits for in-flight jobs; True if all finished within ``grace_s``."""
        return await self._in_flight.drain(grace_s)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        await self._in_flight.cancel()
        if self._connection is not None:
            # Unacked deliveries go back to the queue when the channel closes.
            await self._connection.close()

    async def deliver(self, message: AbstractIncomingMessage) -> None:
        """The broker's callback: handles ``message`` in a task of its own."""
        self._in_flight.spawn(self._handle(message))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        assert self.settler is not None
        delivery = read_delivery(message)
        try:
            job = decode_job(message)
        except UndecodableMessage as exc:
            decision = decide("", Undecodable(str(exc)), delivery, self.policy)
            await self._settle_safely(message, None, delivery, decision)
            return
        with bind(request_id=job.request_id or None, job_id=job.job_id):
            await self._after_earlier_run(job.job_id)
            current = asyncio.current_task()
            assert current is not None  # aio-pika runs each message callback in a task
            self._running[job.job_id] = current
            meter = UsageMeter()
            try:
                try:
                    outcome = await self._run(job, delivery, meter)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a defect ends the job, never loops
                    log.exception("job handling raised")
                    outcome = Crashed(add_usage(job.prior_usage, meter.usage()), type(exc).__name__)
                decision = itemise(decide(job.job_id, outcome, delivery, self.policy), job, meter)
                await self._settle_safely(message, job, delivery, decision)
            finally:
                if self._running.get(job.job_id) is asyncio.current_task():
                    del self._running[job.job_id]

    async def _run(
        self, job: jobs_pb2.CapabilityJob, delivery: Delivery, meter: UsageMeter
    ) -> Outcome:
        run = asyncio.create_task(self.handler.handle(job, delivery, meter))
        self._runs[job.job_id] = run
        try:
            return await run
        except asyncio.CancelledError:
            current = asyncio.current_task()
            stopped = job.job_id in self._stopped
            if not stopped or (current is not None and current.cancelling()):
                raise  # shutdown: the delivery stays unacked and is redelivered
            return Stopped(add_usage(job.prior_usage, meter.usage()))
        finally:
            self._runs.pop(job.job_id, None)
            self._stopped.discard(job.job_id)

    async def _after_earlier_run(self, job_id: str) -> None:
        while (earlier := self._running.get(job_id)) is not None:
            log.info("job already running here; this delivery waits for that run")
            await asyncio.wait({earlier})

    async def _settle_safely(
        self,
        message: AbstractIncomingMessage,
        job: jobs_pb2.CapabilityJob | None,
        delivery: Delivery,
        decision: Decision,
    ) -> None:
        assert self.settler is not None
        try:
            await self.settler.settle(message, job, delivery, decision)
        except asyncio.CancelledError:
            raise
        except CONNECTION_ERRORS as exc:
            # A publish or ack on a dead channel: the broker requeues the unacked
            # delivery, and the redelivery settles it.
            log.warning("broker connection lost while settling (%s)", type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - never requeue into an immediate loop
            log.error("could not settle the delivery (%s); rejecting it", type(exc).__name__)
            try:
                # The main queue dead-letters a rejected message to the DLQ.
                await message.reject(requeue=False)
            except CONNECTION_ERRORS:
                log.warning("broker connection lost before the reject")
            else:
                self.acks.settled_otherwise(message)
