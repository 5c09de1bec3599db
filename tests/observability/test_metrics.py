"""What the four /metrics endpoints say after a known workload matches what
happened: K jobs succeeded, one vague job failed, one injection was refused."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.conftest import SUCCESSES, Observed

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

K = len(SUCCESSES)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [
            Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """Sum over the samples of ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        """Values of ``label`` on the samples of ``name`` that counted something: every
        known label value is exported at zero from the start."""
        return {
            s.labels[label]
            for s in self.samples
            if s.name == name and label in s.labels and s.value
        }

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def scrape(url: str) -> Scrape:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, url
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def scrape_when(url: str, ready: Callable[[Scrape], bool], timeout: float = 30) -> Scrape:
    """The endpoint once ``ready`` holds: a process counts some events just after the
    client could already see their effect (the worker counts a completion after Tasks
    stored it)."""
    deadline = time.monotonic() + timeout
    current = scrape(url)
    while not ready(current) and time.monotonic() < deadline:
        time.sleep(0.05)
        current = scrape(url)
    return current


def test_the_workload_went_as_planned(observed_stack: Observed) -> None:
    codes = [s.status_code for s in observed_stack.submissions]
    assert codes == [202] * K + [202, 400]
    finals = [s.final.get("status") for s in observed_stack.submissions]
    assert finals == ["succeeded"] * K + ["failed", None]


def test_gateway_counts_requests_by_route_and_status(observed_stack: Observed) -> None:
    gateway = scrape(observed_stack.metrics_urls["gateway"])
    post = {"route": "/api/v1/tasks", "method": "POST"}
    assert gateway.value("http_requests_total", **post, status="202") == K + 1
    assert gateway.value("http_requests_total", **post, status="400") == 1
    assert gateway.value("http_requests_total", **post) == K + 2
    # One latency observation per request, in seconds.
    assert gateway.value("http_request_duration_seconds_count", **post) == K + 2
    assert 0 < gateway.value("http_request_duration_seconds_sum", **post) < 60
    # Route patterns, not raw paths: a raw path would make a series per job id.
    routes = gateway.label_values("http_requests_total", "route")
    assert "/api/v1/jobs/<job_id:str>" in routes
    assert not [r for r in routes if UUID.search(r)]


def test_tasks_counts_rpcs_by_method_and_code(observed_stack: Observed) -> None:
    tasks = scrape(observed_stack.metrics_urls["tasks"])
    service = "taskmesh.tasks.v1.TasksService"
    for code, count in (("OK", K + 1), ("INVALID_ARGUMENT", 1)):
        # The gateway's submissions arrive as items of CreateTasks batches (a lone one too).
        created = tasks.value(
            "grpc_server_batch_items_total",
            grpc_service=service,
            grpc_method="CreateTask",
            grpc_code=code,
        )
        assert created == count, code
    calls = tasks.value(
        "grpc_server_handling_seconds_count", grpc_service=service, grpc_method="CreateTasks"
    )
    assert 1 <= calls <= K + 2
    for method in ("StartJob", "CompleteJob"):
        # Alone as the unary call, or an item of a StartJobs / CompleteJobs batch.
        alone = tasks.value(
            "grpc_server_handled_total", grpc_service=service, grpc_method=method, grpc_code="OK"
        )
        batched = tasks.value(
            "grpc_server_batch_items_total",
            grpc_service=service,
            grpc_method=method,
            grpc_code="OK",
        )
        assert alone + batched == K + 1, method
    assert tasks.value("taskmesh_token_reservations_total", outcome="reserved") == K + 2
    # Every started job had its first LLM calls admitted against its reservation.
    admitted = tasks.value("taskmesh_budget_admissions_total", stage="start", outcome="granted")
    assert admitted == K + 1
    assert tasks.value("taskmesh_budget_admissions_total", stage="further", outcome="refused") == 0
    # Every completed job reconciled its reservation against actual usage, exactly once.
    assert tasks.value("taskmesh_token_reconciliation_delta_tokens_count") == K + 1


def test_ai_counts_publications_and_blocked_injections(observed_stack: Observed) -> None:
    ai = scrape(observed_stack.metrics_urls["ai"])
    assert ai.value("taskmesh_jobs_published_total") == K + 1
    assert ai.value("taskmesh_prompt_injections_blocked_total") == 1
    assert ai.label_values("taskmesh_prompt_injections_blocked_total", "pattern") == {
        "instruction_override"
    }
    # Tasks dispatches in ExecuteCapabilities calls: each item counted with its own code.
    items = {"grpc_service": "taskmesh.ai.v1.AiService", "grpc_method": "ExecuteCapabilities"}
    assert ai.value("taskmesh_batch_items_total", **items, grpc_code="OK") == K + 1
    assert ai.value("taskmesh_batch_items_total", **items, grpc_code="INVALID_ARGUMENT") == 1
    assert ai.value("grpc_server_handled_total", **items, grpc_code="OK") >= 1


def test_worker_counts_outcomes_llm_calls_and_tokens(observed_stack: Observed) -> None:
    worker = scrape_when(
        observed_stack.metrics_urls["worker"],
        lambda s: s.value("taskmesh_jobs_completed_total") >= K + 1,
    )
    assert worker.value("taskmesh_jobs_completed_total", outcome="succeeded") == K
    assert worker.value("taskmesh_jobs_completed_total", outcome="failed") == 1
    assert worker.value("taskmesh_jobs_completed_total") == K + 1
    assert worker.value("taskmesh_jobs_started_total") == K + 1
    assert worker.value("taskmesh_vague_inputs_total") == 1
    assert worker.value("taskmesh_jobs_retried_total") == 0
    assert worker.value("taskmesh_jobs_dead_lettered_total") == 0

    assert worker.value("taskmesh_llm_calls_total") > 0
    assert worker.label_values("taskmesh_llm_calls_total", "operation") == {"core", "subtasks"}
    # Both calls run side by side for every job, the vague one included.
    assert worker.value("taskmesh_llm_calls_total", operation="core", outcome="ok") == K
    assert worker.value("taskmesh_llm_calls_total", operation="core", outcome="vague") == 1
    assert worker.value("taskmesh_llm_calls_total", operation="subtasks", outcome="ok") == K + 1
    for operation in ("core", "subtasks"):
        for kind in ("input", "output"):
            assert worker.value("taskmesh_llm_tokens_total", operation=operation, kind=kind) > 0, (
                operation,
                kind,
            )
    assert worker.value("taskmesh_llm_call_seconds_count") == worker.value(
        "taskmesh_llm_calls_total"
    )

    assert worker.value("taskmesh_job_end_to_end_seconds_count") == K + 1
    assert worker.value("taskmesh_job_queue_wait_seconds_count") == K + 1
    end_to_end = worker.value("taskmesh_job_end_to_end_seconds_sum")
    assert 0 < end_to_end < 60 * (K + 1), "seconds, not milliseconds"
