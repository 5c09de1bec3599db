"""What becomes of a delivery: a pure function of what happened while handling
it, what the delivery carried, and the retry policy (SPEC §7).

    decide(outcome, delivery, policy) -> Complete | RetryAt | DeadLetter | Skip

No I/O here: the consumer executes the decision (settle.py). Every outcome has a
decision that ends the job terminal or waits in a delay queue with a bounded
count (attempts, or waits bounded by the job's deadline), so no message is ever
requeued into an immediate redelivery loop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from taskmesh.capabilities.errors import UsageMeter
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.retry_policy import RetryPolicy
from taskmesh.tasks.v1 import tasks_pb2


class Reason(StrEnum):
    """Why a delivery was settled the way it was: a bounded set, used as the
    ``reason`` log field and metric label (never free text in a label)."""

    COMPLETED = "completed"
    LLM_TRANSIENT = "llm_transient"
    LLM_RATE_LIMITED = "llm_rate_limited"
    TASKS_UNAVAILABLE = "tasks_unavailable"
    RETRIES_EXHAUSTED = "retries_exhausted"
    HANDLER_ERROR = "handler_error"
    UNDECODABLE = "undecodable"
    UNKNOWN_JOB = "unknown_job"
    NOT_RUNNABLE = "not_runnable"
    CANCELLED = "cancelled"


# --- what happened -------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """What a message carried besides the job: ``attempts`` = failed LLM attempts
    before it, ``waits`` = waits for Tasks before it, ``outcome`` = a finished
    CompleteJobRequest still to be reported (serialized), if any."""

    attempts: int = 0
    waits: int = 0
    outcome: bytes | None = None


@dataclass(frozen=True)
class Finished:
    """The capability ran to an outcome to report (success or a permanent failure)."""

    request: tasks_pb2.CompleteJobRequest


@dataclass(frozen=True)
class Transient:
    """The attempt failed for a reason that may pass; ``usage`` = everything spent
    by the job so far (prior attempts included). ``retry_after_s``: the endpoint's
    Retry-After, seconds, uncapped."""

    detail: str
    usage: jobs_pb2.TokenUsage
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Crashed:
    """The project's own code raised while handling the job (a defect): ``usage`` =
    everything spent so far, ``error`` = the exception's type name (for logs only)."""

    usage: jobs_pb2.TokenUsage
    error: str


@dataclass(frozen=True)
class Stopped:
    """The run was stopped because Tasks said the job must not go on (cancelled
    while running); ``usage`` = everything spent, abandoned calls at their bound."""

    usage: jobs_pb2.TokenUsage


@dataclass(frozen=True)
class TasksUnavailable:
    """StartJob or CompleteJob could not reach Tasks after the callback's own retries.
    ``request``: the outcome that could not be reported, if the capability ran."""

    request: tasks_pb2.CompleteJobRequest | None = None


@dataclass(frozen=True)
class Undecodable:
    detail: str


@dataclass(frozen=True)
class UnknownJob:
    """Tasks has no such job."""


@dataclass(frozen=True)
class NotRunnable:
    """Tasks says the job must not run (finished, withdrawn, cancelled): ``state`` name."""

    state: str


Outcome = (
    Finished
    | Transient
    | Crashed
    | Stopped
    | TasksUnavailable
    | Undecodable
    | UnknownJob
    | NotRunnable
)


# --- what to do ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Complete:
    """Report ``request`` with CompleteJob, then ack. ``dead_letter``: also copy the
    message to the DLQ first (its job can be replayed)."""

    request: tasks_pb2.CompleteJobRequest
    reason: Reason = Reason.COMPLETED
    dead_letter: bool = False


@dataclass(frozen=True)
class RetryAt:
    """Publish the job to the delay queue serving ``delay_s``, then ack. ``attempts``
    and ``waits`` are the counts the next delivery carries; ``usage`` = spent so far;
    ``outcome`` = a finished outcome to report without a new LLM run."""

    delay_s: float
    attempts: int
    waits: int
    reason: Reason
    usage: jobs_pb2.TokenUsage | None = None
    outcome: bytes | None = field(default=None, repr=False)
    #: The calls behind ``usage``, carried to the next delivery (CapabilityJob.prior_calls).
    calls: tuple[jobs_pb2.LlmCallUsage, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DeadLetter:
    """Copy the message as it is to the DLQ with ``detail`` in its headers, then ack."""

    reason: Reason
    detail: str


@dataclass(frozen=True)
class Skip:
    """Ack and do nothing: the job must not run."""

    reason: Reason


Decision = Complete | RetryAt | DeadLetter | Skip


#: Failures whose message is kept in the DLQ for `taskmesh dlq replay` (SPEC §7).
_FAILURE_REASONS = {
    tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED: Reason.RETRIES_EXHAUSTED,
    tasks_pb2.JOB_ERROR_TYPE_INTERNAL: Reason.HANDLER_ERROR,
}


def failure(
    job_id: str,
    kind: tasks_pb2.JobErrorType,
    message: str,
    usage: jobs_pb2.TokenUsage,
    suggestions: list[str] | tuple[str, ...] = (),
) -> tasks_pb2.CompleteJobRequest:
    """A CompleteJobRequest for a failed job, charging ``usage``."""
    return tasks_pb2.CompleteJobRequest(
        job_id=job_id,
        error=tasks_pb2.JobError(type=kind, message=message, suggestions=list(suggestions)),
        usage=usage,
    )


def decide(job_id: str, outcome: Outcome, delivery: Delivery, policy: RetryPolicy) -> Decision:
    """The decision table of SPEC §7; ``job_id`` names the job in a failure report."""
    match outcome:
        case Finished(request):
            # A parked outcome of an exhausted or crashed job keeps its DLQ copy.
            reason = _FAILURE_REASONS.get(request.error.type, Reason.COMPLETED)
            return Complete(request, reason, dead_letter=reason is not Reason.COMPLETED)
        case Transient(detail, usage, retry_after_s):
            attempts = delivery.attempts + 1
            limited = retry_after_s is not None and retry_after_s > 0
            if policy.exhausted(attempts):
                message = f"The job failed {attempts} times; the last error was: {detail}"
                request = failure(
                    job_id, tasks_pb2.JOB_ERROR_TYPE_RETRIES_EXHAUSTED, message[:500], usage
                )
                return Complete(request, Reason.RETRIES_EXHAUSTED, dead_letter=True)
            return RetryAt(
                policy.delay(attempts, retry_after_s),
                attempts,
                delivery.waits,
                Reason.LLM_RATE_LIMITED if limited else Reason.LLM_TRANSIENT,
                usage=usage,
            )
        case Crashed(usage, _):
            # A defect fails every time: end the job now, charged, and keep the message
            # in the DLQ so it can be replayed once the defect is fixed.
            request = failure(
                job_id, tasks_pb2.JOB_ERROR_TYPE_INTERNAL, "The job failed unexpectedly.", usage
            )
            return Complete(request, Reason.HANDLER_ERROR, dead_letter=True)
        case Stopped(usage):
            # Tasks keeps the job cancelled and charges what this report says was spent.
            request = failure(
                job_id, tasks_pb2.JOB_ERROR_TYPE_INTERNAL, "The job was cancelled.", usage
            )
            return Complete(request, Reason.CANCELLED)
        case TasksUnavailable(request):
            waits = delivery.waits + 1
            # Waiting for Tasks is no LLM attempt; the job's deadline bounds the waits.
            return RetryAt(
                policy.backoff(max(waits, delivery.attempts)),
                delivery.attempts,
                waits,
                Reason.TASKS_UNAVAILABLE,
                outcome=None if request is None else request.SerializeToString(),
            )
        case Undecodable(detail):
            return DeadLetter(Reason.UNDECODABLE, f"undecodable: {detail}")
        case UnknownJob():
            return DeadLetter(Reason.UNKNOWN_JOB, "unknown job")
        case NotRunnable():
            return Skip(Reason.NOT_RUNNABLE)
    raise TypeError(f"not an outcome: {outcome!r}")


def itemise(decision: Decision, job: jobs_pb2.CapabilityJob, meter: UsageMeter) -> Decision:
    """Attaches the LLM calls behind a decision's usage: earlier attempts' (the message's
    ``prior_calls``) and this delivery's (``meter``). A report gets them in
    ``CompleteJobRequest.calls`` (Tasks records them with the charge, for `taskmesh ledger
    check`); a retry carries them to the next delivery. A parked report already has its own."""
    calls = [
        *job.prior_calls,
        *(
            jobs_pb2.LlmCallUsage(
                operation=c.operation,
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                estimated=c.estimated,
            )
            for c in meter.calls
        ),
    ]
    if isinstance(decision, Complete) and not decision.request.calls:
        decision.request.calls.extend(calls)
    elif isinstance(decision, RetryAt) and decision.usage is not None:
        return replace(decision, calls=tuple(calls))
    return decision
