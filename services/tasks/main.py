"""The Tasks process: database, gRPC server, expiry sweeper, webhook outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.events import JobEvents
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.ports import RateLimiter
from services.tasks.domain.queries import JobQueries
from services.tasks.domain.users import UserService
from services.tasks.domain.webhooks import WebhookPolicy, WebhookService
from services.tasks.messaging.webhook_relay import WebhookRelay
from services.tasks.storage.db import is_sqlite
from services.tasks.storage.job_feed import JobFeed
from services.tasks.storage.ratelimit import LocalTokenBucket, RedisTokenBucket
from services.tasks.storage.repository import Store
from services.tasks.transport import admin_servicer
from services.tasks.transport.ai_client import AiDispatcher
from services.tasks.transport.caller import caller_interceptor
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh import metrics
from taskmesh.queue.webhooks import webhook_topology
from taskmesh.rpc import client, server
from taskmesh.settings import DatabaseSettings, TasksSettings

log = logging.getLogger(__name__)

#: What this process reads from the environment (``launcher.service``).
SETTINGS = TasksSettings

#: The sweeper runs at least this often (SPEC §8: TIMED_OUT within 10 s).
SWEEP_INTERVAL_S = 5.0
#: How long start waits for the LISTEN connection; watchers poll until it is up.
FEED_START_WAIT_S = 5.0


def build_limiter(settings: TasksSettings) -> RateLimiter:
    """The request-rate limiter: shared through Redis when REDIS_URL is set, else
    per process. On PostgreSQL (the multi-replica setup) a per-process bucket lets
    N Tasks replicas admit N times the configured rate, so that is logged as a
    warning at start (README, "Replicas")."""
    if settings.redis_url:
        return RedisTokenBucket(
            settings.redis_url, settings.rate_limit_bucket_size, settings.rate_limit_refill_per_s
        )
    if not is_sqlite(settings.database_url):
        log.warning(
            "REDIS_URL is not set: the request rate limit is per Tasks process; "
            "with several replicas clients get that many times the rate. "
            "Set REDIS_URL to share it."
        )
    return LocalTokenBucket(settings.rate_limit_bucket_size, settings.rate_limit_refill_per_s)


def job_policy(settings: TasksSettings) -> JobPolicy:
    return JobPolicy(
        budget=BudgetPolicy(
            window_s=settings.token_window_s,
            limit=settings.token_window_limit,
            estimate=settings.parse_task_token_estimate,
        ),
        job_timeout_s=settings.job_timeout_s,
    )


async def _sweep(jobs: JobService, interval: float) -> None:
    while True:
        try:
            expired = await jobs.expire_overdue()
            if expired:
                log.warning("failed %d jobs past their deadline", expired)
            abandoned = await jobs.withdraw_abandoned()
            if abandoned:
                log.warning("withdrew %d keyed jobs whose request died before dispatch", abandoned)
        except Exception:
            log.exception("expiry sweep failed")
        await asyncio.sleep(interval)


async def run(
    settings: TasksSettings, stop: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    token = settings.require_internal_token()
    store = Store(settings.database_url)
    await store.open()
    limiter = build_limiter(settings)
    users = UserService(store, limiter)
    if settings.taskmesh_dev_api_key is not None:
        if await users.ensure_dev_user(settings.taskmesh_dev_api_key.get_secret_value()):
            log.info("created user dev")
    events = JobEvents()
    feed = None
    if not is_sqlite(settings.database_url):
        # Watchers here hear changes made by every replica (SPEC §6 WatchJob).
        feed = JobFeed(settings.database_url, events)
        await feed.start(wait_s=FEED_START_WAIT_S)
        if not events.feed_live:
            log.warning(
                "job feed (LISTEN) not connected yet; watchers poll every %.0f s until it is",
                events.poll_s,
            )
    ai_channel = client.channel(
        settings.ai_grpc_addr, token=token, timeout_s=settings.grpc_call_timeout_s
    )
    policy = job_policy(settings)
    jobs = JobService(store, AiDispatcher(ai_channel), policy, events=events)
    queries = JobQueries(store, policy.budget, events)
    webhooks = WebhookService(store, WebhookPolicy(settings.webhook_allow_private))
    metrics.serve(settings.tasks_metrics_port, settings.metrics_host)
    grpc_server, health, port = await server.start_server(
        settings.tasks_grpc_addr,
        token,
        [
            registrar(
                TasksServicer(
                    jobs,
                    users,
                    webhooks,
                    queries,
                    dispatch_timeout_s=settings.tasks_dispatch_timeout_s,
                )
            ),
            admin_servicer.registrar(admin_servicer.AdminServicer(users, jobs, queries)),
        ],
        [SERVICE_NAME, admin_servicer.SERVICE_NAME],
        interceptors=[caller_interceptor(users)],
    )
    sweeper = asyncio.create_task(_sweep(jobs, min(SWEEP_INTERVAL_S, settings.job_timeout_s)))
    # In the background: Tasks serves while the broker is still coming up.
    relay_stop = asyncio.Event()
    relay = asyncio.create_task(
        WebhookRelay(
            store,
            settings.rabbitmq_url,
            webhook_topology(settings.job_queue),
            publish_timeout_s=settings.tasks_relay_publish_timeout_s,
            connect_timeout_s=settings.broker_connect_timeout_s,
        ).run(relay_stop)
    )
    await server.set_serving(health, [SERVICE_NAME, admin_servicer.SERVICE_NAME], True)
    log.info("tasks serving", extra={"addr": settings.tasks_grpc_addr, "port": port})
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await server.set_serving(health, [SERVICE_NAME, admin_servicer.SERVICE_NAME], False)
        # In-flight RPCs (a CompleteJob transaction) finish within the grace period.
        await grpc_server.stop(settings.shutdown_grace_s)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        relay_stop.set()
        try:
            await asyncio.wait_for(relay, 10.0)
        except Exception:
            log.exception("webhook relay did not stop cleanly")
        if feed is not None:
            await feed.close()
        await ai_channel.close()
        await limiter.close()
        await store.close()
        log.info("tasks stopped")


async def migrate(settings: DatabaseSettings) -> None:
    """Applies pending migrations (what ``run`` does first) and returns: ``taskmesh
    migrate``, the Kubernetes migration Job. Concurrent runs on PostgreSQL serialise
    on an advisory lock (``services.tasks.storage.db.migrate``)."""
    store = Store(settings.database_url)
    try:
        await store.open()
    finally:
        await store.close()
