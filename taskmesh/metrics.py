"""Prometheus metrics of every process. Seconds, not milliseconds.

Each process registers the same families in its own registry (the default
one); families a process never touches simply stay at zero."""

from __future__ import annotations

from typing import TypeVar

from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_JOB = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)

# --- HTTP (gateway) ---------------------------------------------------------------------
http_requests = Counter(
    "http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
http_latency = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["route", "method"], buckets=_LATENCY
)

# --- gRPC ------------------------------------------------------------------------------
grpc_handled = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server",
    ["grpc_service", "grpc_method", "grpc_code"],
)
grpc_handling = Histogram(
    "grpc_server_handling_seconds",
    "RPC handling time on the server",
    ["grpc_service", "grpc_method"],
    buckets=_LATENCY,
)
grpc_batch_items = Counter(
    "grpc_server_batch_items_total",
    "Items of batch RPCs (CreateTasks, StartJobs, CompleteJobs) answered, by the unary method each stands"
    " for and the code its unary call would have had",
    ["grpc_service", "grpc_method", "grpc_code"],
)

batch_items = Counter(
    "taskmesh_batch_items_total",
    "Items of batched RPCs (AiService.ExecuteCapabilities) answered, by the code the item"
    " would have had as a unary call",
    ["grpc_service", "grpc_method", "grpc_code"],
)

# --- jobs ------------------------------------------------------------------------------
jobs_published = Counter("taskmesh_jobs_published_total", "Jobs confirmed by the broker")
jobs_started = Counter("taskmesh_jobs_started_total", "Job attempts started by workers")
jobs_completed = Counter(
    "taskmesh_jobs_completed_total", "Jobs that reached a terminal state", ["outcome"]
)
jobs_retried = Counter(
    "taskmesh_jobs_retried_total", "Job attempts scheduled for retry", ["reason"]
)
jobs_dead_lettered = Counter(
    "taskmesh_jobs_dead_lettered_total", "Messages sent to the dead-letter queue", ["reason"]
)
job_queue_wait = Histogram(
    "taskmesh_job_queue_wait_seconds", "Time from enqueue to a worker picking it up", buckets=_JOB
)
job_end_to_end = Histogram(
    "taskmesh_job_end_to_end_seconds", "Time from enqueue to completion", buckets=_JOB
)

# --- LLM -------------------------------------------------------------------------------
llm_calls = Counter("taskmesh_llm_calls_total", "LLM calls", ["operation", "model", "outcome"])
llm_latency = Histogram(
    "taskmesh_llm_call_seconds", "LLM call latency", ["operation", "model"], buckets=_LATENCY
)
llm_tokens = Counter("taskmesh_llm_tokens_total", "LLM tokens", ["operation", "model", "kind"])
#: One per capability run: a model or prompt change shows in its outcomes (issue 14.5).
parse_task_runs = Counter(
    "taskmesh_parse_task_runs_total",
    "parse-task runs by outcome",
    ["model", "prompt_version", "outcome"],
)

# --- screening and budgets ---------------------------------------------------------------
injections_blocked = Counter(
    "taskmesh_prompt_injections_blocked_total", "Inputs refused as prompt injection", ["pattern"]
)
vague_inputs = Counter("taskmesh_vague_inputs_total", "Jobs failed as vague input")
token_reservations = Counter(
    "taskmesh_token_reservations_total", "Token reservation attempts", ["outcome"]
)
#: stage: start (the first calls, admitted by StartJob) or further (ReserveTokens, SPEC §8).
budget_admissions = Counter(
    "taskmesh_budget_admissions_total",
    "LLM call admissions against a job's reservation",
    ["stage", "outcome"],
)
token_reconciliation_delta = Histogram(
    "taskmesh_token_reconciliation_delta_tokens",
    "Actual minus reserved tokens at completion",
    buckets=(-2500, -1000, -500, -100, 0, 100, 500, 1000, 2500, 10000),
)

# --- client webhooks -----------------------------------------------------------------
#: delivered: 2xx; retried: failed, another attempt scheduled; given_up: no attempt left after
#: WEBHOOK_MAX_ATTEMPTS; blocked: the URL resolved to a refused address (SSRF guard);
#: dropped: the endpoint was deleted before the attempt.
WEBHOOK_OUTCOMES = ("delivered", "retried", "given_up", "blocked", "dropped")
webhook_deliveries = Counter(
    "taskmesh_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"]
)
webhook_delivery_latency = Histogram(
    "taskmesh_webhook_delivery_seconds", "Webhook POST duration", buckets=_LATENCY
)
for _outcome in WEBHOOK_OUTCOMES:
    webhook_deliveries.labels(_outcome)  # present at zero (SPEC §12)


Family = TypeVar("Family", bound=MetricWrapperBase)
_CHILDREN: dict[tuple[MetricWrapperBase, tuple[str, ...]], MetricWrapperBase] = {}


def labelled(family: Family, *values: str) -> Family:
    """``family.labels(*values)``, bound once per process: the same child every time.

    ``labels()`` validates, takes the family's lock and builds a key per call, a few
    microseconds each, about ten times per job in the worker (issue 12). Label values of the
    hot paths are bounded (operations, outcomes, the configured model), so the cache is too.
    Raises as ``labels()`` does (``ValueError`` for a wrong label count)."""
    key = (family, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = family.labels(*values)
    return child  # type: ignore[return-value]  # labels() returns the family's own type


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Starts the /metrics endpoint of a gRPC service or the worker (0 = off)."""
    if port:
        start_http_server(port, addr=host)


#: Label values known before any event (SPEC §12: counters with labels are present at zero from
#: the start, so dashboards and the alert rules in deploy/prometheus/alerts.yml have a series to
#: compute rates and ratios on before the first retry or dead letter). Values that depend on the
#: configuration (the model) appear with their first use.
KNOWN_LABELS: tuple[tuple[Counter, tuple[tuple[str, ...], ...]], ...] = (
    (jobs_completed, (("succeeded",), ("failed",), ("cancelled",))),
    (jobs_retried, (("tasks unavailable",), ("llm",))),
    (jobs_dead_lettered, (("retries exhausted",), ("undecodable",), ("unknown job",))),
    (token_reservations, (("reserved",), ("denied",))),
    (
        budget_admissions,
        tuple((stage, o) for stage in ("start", "further") for o in ("granted", "refused")),
    ),
    (
        injections_blocked,
        (
            ("instruction_override",),
            ("prompt_extraction",),
            ("output_override",),
            ("format_manipulation",),
        ),
    ),
)


def _present_at_zero() -> None:
    for family, label_sets in KNOWN_LABELS:
        for values in label_sets:
            family.labels(*values)


_present_at_zero()
