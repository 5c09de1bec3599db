"""One delivery's work up to its outcome: report a parked outcome, or StartJob
and run the capability. Returns an outcome of decisions.py; raises only on
cancellation (Tasks' own failures are outcomes)."""

from __future__ import annotations

import logging

from services.worker.budget_guard import ReservationGuard
from services.worker.completion import TasksCallback
from services.worker.decisions import (
    Delivery,
    Finished,
    NotRunnable,
    Outcome,
    TasksUnavailable,
    UnknownJob,
)
from services.worker.hooks import WorkerHooks
from services.worker.runner import CapabilityRunner
from taskmesh import errors, job_states
from taskmesh.capabilities.errors import UsageMeter
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.tasks.v1 import tasks_pb2

log = logging.getLogger(__name__)

#: States in which StartJob lets a run begin; any other means "do not run".
RUNNABLE = job_states.OPEN_STATES


class JobHandler:
    """StartJob, then the capability run, for one delivery (SPEC §7: a job Tasks says
    must not run is never run). StartJob also admits the run's first LLM calls (what
    earlier attempts spent + the first calls' bound); the run's further calls go through
    a :class:`ReservationGuard` (SPEC §8)."""

    def __init__(self, runner: CapabilityRunner, tasks: TasksCallback, hooks: WorkerHooks) -> None:
        self.runner = runner
        self.tasks = tasks
        self.hooks = hooks

    async def handle(
        self, job: jobs_pb2.CapabilityJob, delivery: Delivery, meter: UsageMeter | None = None
    ) -> Outcome:
        if delivery.outcome is not None:
            # The LLM already ran; only the report to Tasks is missing.
            return Finished(tasks_pb2.CompleteJobRequest.FromString(delivery.outcome))
        meter = meter if meter is not None else UsageMeter()
        prior = int(job.prior_usage.input_tokens + job.prior_usage.output_tokens)
        prepared = self.runner.prepare(job)
        needed = prior + prepared.first_bound
        try:
            started = await self.tasks.start_job(job.job_id, job.request_id, needed)
        except errors.NotFound:
            return UnknownJob()
        except errors.Unavailable:
            return TasksUnavailable()
        if started.job.state not in RUNNABLE:
            return NotRunnable(tasks_pb2.JobState.Name(started.job.state))
        self.hooks.started(job, delivery.attempts)
        if not started.budget_granted:
            log.info(
                "the reservation does not cover the first calls",
                extra={"tokens": needed, "reserved": started.reserved_tokens},
            )

        async def top_up(tokens: int) -> bool:
            return await self.tasks.reserve_tokens(job.job_id, tokens, job.request_id)

        guard = ReservationGuard(
            top_up,
            reserved=started.reserved_tokens,
            start_granted=started.budget_granted,
            prior_tokens=prior,
            meter=meter,
        )
        return await self.runner.run(job, meter, guard, prepared)
