"""The worker process: consumes jobs, runs capabilities, reports to Tasks;
and delivers client webhooks (services/webhooks) from their own queue.

Shutdown (SIGTERM/SIGINT): stop consuming, let in-flight jobs finish within
SHUTDOWN_GRACE_S, then close; whatever is unfinished stays unacked and is
redelivered."""

from __future__ import annotations

import asyncio
import logging

from services.webhooks.consumer import WebhookConsumer
from services.webhooks.sender import Sender
from services.webhooks.targets import TasksTargets
from services.worker.completion import TasksCallback
from services.worker.consumer import JobConsumer
from services.worker.runner import CapabilityRunner
from taskmesh import metrics
from taskmesh.capabilities.llm_client import make_llm_client
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.queue.topology import JobTopology
from taskmesh.queue.webhooks import webhook_topology
from taskmesh.rpc import client
from taskmesh.settings import WorkerSettings

log = logging.getLogger(__name__)

#: What this process reads from the environment (``launcher.service``).
SETTINGS = WorkerSettings


async def run(
    settings: WorkerSettings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    token = settings.require_internal_token()
    tasks_channel = client.channel(
        settings.tasks_grpc_addr, token=token, timeout_s=settings.grpc_call_timeout_s
    )
    llm = make_llm_client(settings, concurrency=settings.worker_concurrency)
    consumer = JobConsumer(
        settings.rabbitmq_url,
        JobTopology(settings.job_queue, policy=RetryPolicy(settings.job_max_attempts)),
        CapabilityRunner(llm, settings.openai_model, settings.parse_task_prompt_version),
        TasksCallback(tasks_channel),
        concurrency=settings.worker_concurrency,
        publish_timeout_s=settings.worker_publish_timeout_s,
        connect_timeout_s=settings.broker_connect_timeout_s,
    )
    webhooks = WebhookConsumer(
        settings.rabbitmq_url,
        webhook_topology(settings.job_queue),
        TasksTargets(tasks_channel, settings.webhook_lookup_timeout_s),
        Sender(settings.webhook_timeout_s, settings.webhook_allow_private),
        max_attempts=settings.webhook_max_attempts,
        publish_timeout_s=settings.worker_publish_timeout_s,
        connect_timeout_s=settings.broker_connect_timeout_s,
    )
    metrics.serve(settings.worker_metrics_port, settings.metrics_host)
    await consumer.start(stop)
    await webhooks.start(stop)
    log.info(
        "worker consuming",
        extra={"queue": settings.job_queue, "concurrency": settings.worker_concurrency},
    )
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await consumer.stop_consuming()
        log.info("draining: finishing %d jobs in flight", consumer.in_flight)
        await webhooks.stop_consuming()
        # Webhook attempts finish (or return to the queue) while jobs drain, not before.
        webhooks_drained = asyncio.create_task(webhooks.drain(settings.shutdown_grace_s))
        if not await consumer.drain(settings.shutdown_grace_s):
            log.warning(
                "grace period over with %d jobs in flight; they will be redelivered",
                consumer.in_flight,
            )
        await webhooks_drained
        await webhooks.close()
        await consumer.close()
        await tasks_channel.close()
        await llm.close()
        log.info("worker stopped")
