"""Configuration errors stop a process at start with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from taskmesh.settings import Settings


def start(service: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "launcher", service],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_LIMIT_BUCKET_SIZE", "lots"),
        ("TASKS_GRPC_ADDR", "no-port-here"),
        ("DATABASE_URL", "mysql://db/taskmesh"),
        ("LOG_FORMAT", "xml"),
        ("WORKER_CONCURRENCY", "0"),
        ("WEBHOOK_TIMEOUT_S", "-1"),
        ("WEBHOOK_MAX_ATTEMPTS", "zero"),
        ("WEBHOOK_ALLOW_PRIVATE", "maybe"),
    ],
)
def test_a_bad_value_stops_the_process_with_one_line_naming_it(variable, value, tmp_path):
    result = start("tasks", {**os.environ, variable: value, "INTERNAL_AUTH_TOKEN": "t"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert value not in lines[0]  # values may be secrets: never echoed


def test_missing_internal_token_is_named(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "INTERNAL_AUTH_TOKEN"}
    result = start("worker", env, tmp_path)
    assert result.returncode == 2
    assert "INTERNAL_AUTH_TOKEN" in result.stderr.strip().splitlines()[-1]


def test_defaults_match_the_contract(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.rabbitmq_url == "amqp://guest:guest@localhost:5672/"
    assert settings.database_url == "sqlite+aiosqlite:///./taskmesh.db"
    assert (settings.gateway_host, settings.gateway_port) == ("127.0.0.1", 8080)
    assert (settings.tasks_grpc_addr, settings.ai_grpc_addr) == (
        "127.0.0.1:50051",
        "127.0.0.1:50052",
    )
    assert (settings.worker_concurrency, settings.job_max_attempts) == (64, 5)
    assert (settings.token_window_s, settings.token_window_limit) == (86_400, 100_000)
    assert settings.parse_task_token_estimate == 2_500
    assert (settings.webhook_timeout_s, settings.webhook_max_attempts) == (10, 8)
    assert settings.webhook_allow_private is False
