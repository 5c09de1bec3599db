"""What the worker reports as it goes, as hooks: the consumer calls them, the
Prometheus implementation turns them into the metrics of SPEC §12, tests can
pass their own. A hook never changes what happens to a job."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from services.worker.decisions import Complete, DeadLetter, Decision, Reason, RetryAt
from taskmesh import metrics
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.tasks.v1 import tasks_pb2

_OUTCOME = {
    tasks_pb2.JOB_STATE_SUCCEEDED: "succeeded",
    tasks_pb2.JOB_STATE_FAILED: "failed",
}


class WorkerHooks:
    """No-op hooks; subclass and override what you need."""

    def started(self, job: jobs_pb2.CapabilityJob, attempts: int) -> None:
        """A run of ``job`` begins after ``attempts`` failed ones."""

    def settled(self, decision: Decision) -> None:
        """A delivery was settled with ``decision`` (the message is acked)."""

    def completed(
        self, job: jobs_pb2.CapabilityJob, response: tasks_pb2.CompleteJobResponse
    ) -> None:
        """Tasks recorded an outcome; ``response.applied`` is False for a repeat."""


class PrometheusHooks(WorkerHooks):
    def started(self, job: jobs_pb2.CapabilityJob, attempts: int) -> None:
        metrics.jobs_started.inc()
        if job.HasField("enqueue_time") and attempts == 0:
            metrics.job_queue_wait.observe(_seconds_since(job.enqueue_time))

    def settled(self, decision: Decision) -> None:
        if isinstance(decision, RetryAt):
            metrics.labelled(metrics.jobs_retried, decision.reason.value).inc()
        elif isinstance(decision, DeadLetter) or (
            isinstance(decision, Complete) and decision.dead_letter
        ):
            metrics.labelled(metrics.jobs_dead_lettered, Reason(decision.reason).value).inc()

    def completed(
        self, job: jobs_pb2.CapabilityJob, response: tasks_pb2.CompleteJobResponse
    ) -> None:
        if not response.applied:
            return
        metrics.labelled(metrics.jobs_completed, _OUTCOME.get(response.job.state, "unknown")).inc()
        if response.job.error.type == tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT:
            metrics.vague_inputs.inc()
        if job.HasField("enqueue_time"):
            metrics.job_end_to_end.observe(_seconds_since(job.enqueue_time))


def _seconds_since(stamp: Timestamp) -> float:
    # Straight from the fields: ToDatetime builds a datetime (and a timezone) per job.
    return max(0.0, time.time() - (stamp.seconds + stamp.nanos / 1e9))
