"""deploy/prometheus/alerts.yml: valid for Prometheus (``promtool check rules``), firing when
it should and not otherwise (``promtool test rules`` on alerts.test.yml), and written against
metric families the processes export, at zero from the start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"

#: Families exported by the webhook delivery component (SPEC §5, §12), which lives outside
#: taskmesh/metrics.py.
WEBHOOK_FAMILIES = {"taskmesh_webhook_deliveries"}
#: Families of Prometheus itself and of RabbitMQ's Prometheus plugin.
EXTERNAL_FAMILIES = {
    "up",
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_messages_ready",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing: .ci/run installs the Debian prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS
    )


def test_alert_rules_pass_promtool_check() -> None:
    done = run("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_fire_exactly_as_their_unit_tests_expect() -> None:
    done = run("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_configuration_loads_the_alert_rules() -> None:
    done = run("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "alerts.yml" in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["rule_files"]


def test_the_alerts_asked_for_are_there() -> None:
    rules = [
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    ]
    for needed in ("DeadLetter", "FailureRatio", "NotReady", "TokenBudget", "WebhookDeliveries"):
        assert any(needed in name for name in rules), needed


def exported_at_start() -> str:
    """The /metrics text of a fresh process that has handled nothing yet."""
    code = (
        "import taskmesh.metrics\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "print(generate_latest(REGISTRY).decode())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_every_metric_an_alert_uses_is_exported_with_a_series_before_any_event() -> None:
    text = exported_at_start()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    names = set()
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(
                re.findall(r"\b((?:taskmesh|http|grpc|rabbitmq)_[a-z_]+|up)\b", rule["expr"])
            )
    for name in sorted(names - EXTERNAL_FAMILIES):
        family = name.removesuffix("_total")
        if family in WEBHOOK_FAMILIES:
            continue
        if name.startswith("http_"):
            # Labelled by route and status: its series are born with the first request.
            assert f"# TYPE {name} counter" in text, name
            continue
        assert name in samples, f"{name}: no series at process start"


def test_labelled_job_counters_start_at_zero_for_every_known_reason() -> None:
    text = exported_at_start()
    for line in (
        'taskmesh_jobs_dead_lettered_total{reason="retries exhausted"} 0.0',
        'taskmesh_jobs_dead_lettered_total{reason="undecodable"} 0.0',
        'taskmesh_jobs_retried_total{reason="tasks unavailable"} 0.0',
        'taskmesh_jobs_completed_total{outcome="failed"} 0.0',
        'taskmesh_token_reservations_total{outcome="denied"} 0.0',
    ):
        assert line in text.splitlines(), line


def test_injection_counters_start_at_zero_for_every_pattern_type_the_screen_reports() -> None:
    from services.ai.domain.screening import PatternType

    text = exported_at_start().splitlines()
    for pattern in PatternType:
        line = f'taskmesh_prompt_injections_blocked_total{{pattern="{pattern.value}"}} 0.0'
        assert line in text, line
