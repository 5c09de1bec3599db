"""The AI process: gRPC server and the job publisher."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.ai.domain.execute import CapabilityExecutor
from services.ai.domain.screening import default_screener
from services.ai.messaging.publisher import JobPublisher
from services.ai.transport.servicer import SERVICE_NAME, AiServicer, registrar
from taskmesh import metrics
from taskmesh.capabilities.llm_client import make_llm_client
from taskmesh.queue.topology import JobTopology
from taskmesh.rpc import server
from taskmesh.settings import AiSettings

log = logging.getLogger(__name__)

#: What this process reads from the environment (``launcher.service``).
SETTINGS = AiSettings


async def _report_health(publisher: JobPublisher, health, interval: float = 1.0) -> None:
    """Readiness tells the truth while the broker is away: NOT_SERVING until
    the robust connection is back."""
    last = None
    while True:
        up = publisher.healthy
        if up != last:
            await server.set_serving(health, [SERVICE_NAME], up)
            log.info("broker connection %s", "up" if up else "down")
            last = up
        await asyncio.sleep(interval)


async def run(
    settings: AiSettings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    token = settings.require_internal_token()
    # The screen's model loads before anything listens: until it is loaded the service is not
    # ready, and if it cannot load the service does not start (screening fails closed).
    screener = await asyncio.to_thread(default_screener)
    publisher = JobPublisher(
        settings.rabbitmq_url,
        JobTopology(settings.job_queue),
        connect_timeout_s=settings.broker_connect_timeout_s,
    )
    await publisher.connect(stop)
    llm = make_llm_client(settings)
    executor = CapabilityExecutor(
        publisher,
        llm,
        settings.openai_model,
        settings.parse_task_prompt_version,
        screener=screener,
    )
    metrics.serve(settings.ai_metrics_port, settings.metrics_host)
    grpc_server, health, port = await server.start_server(
        settings.ai_grpc_addr,
        token,
        [registrar(AiServicer(executor, settings.ai_publish_timeout_s))],
        [SERVICE_NAME],
    )
    reporter = asyncio.create_task(_report_health(publisher, health))
    log.info("ai serving", extra={"addr": settings.ai_grpc_addr, "port": port})
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        await server.set_serving(health, [SERVICE_NAME], False)
        await grpc_server.stop(settings.shutdown_grace_s)
        await publisher.close()
        await llm.close()
        log.info("ai stopped")
