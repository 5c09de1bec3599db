"""Configuration errors stop a process at start with one line naming the variable."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from taskmesh.settings import (
    AiSettings,
    BrokerSettings,
    DatabaseSettings,
    GatewaySettings,
    MetricsSettings,
    ProcessSettings,
    RpcSettings,
    Settings,
    SimulatorSettings,
    TasksSettings,
    WorkerSettings,
    default,
    load_settings,
)


def start(service: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "launcher", service],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


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


PROCESS_CLASSES = (GatewaySettings, TasksSettings, AiSettings, WorkerSettings, SimulatorSettings)


def test_every_setting_says_what_it_means():
    undocumented = [name for name, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_settings_is_every_process_class_and_nothing_else():
    each = set().union(*(kind.model_fields for kind in PROCESS_CLASSES))
    assert set(Settings.model_fields) == each


def test_every_process_reads_the_shared_groups_it_needs():
    for kind in (GatewaySettings, TasksSettings, AiSettings, WorkerSettings):
        assert issubclass(kind, RpcSettings) and issubclass(kind, ProcessSettings)
    for kind in (TasksSettings, AiSettings, WorkerSettings):
        assert issubclass(kind, BrokerSettings) and issubclass(kind, MetricsSettings)
    assert issubclass(TasksSettings, DatabaseSettings)
    assert not issubclass(WorkerSettings, DatabaseSettings)  # Tasks alone owns the database
    assert not issubclass(GatewaySettings, BrokerSettings)


def test_a_process_ignores_another_process_variables(monkeypatch):
    """A worker starts whatever the gateway's port says; the gateway does not."""
    monkeypatch.setenv("GATEWAY_PORT", "lots")
    monkeypatch.setenv("DATABASE_URL", "mysql://db/taskmesh")
    worker = load_settings(WorkerSettings, _env_file=None)
    assert not hasattr(worker, "gateway_port")
    with pytest.raises(SystemExit) as exited:
        load_settings(GatewaySettings, _env_file=None)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("tasks", "RATE_LIMIT_BUCKET_SIZE", "lots"),
        ("tasks", "TASKS_GRPC_ADDR", "no-port-here"),
        ("tasks", "DATABASE_URL", "mysql://db/taskmesh"),
        ("tasks", "LOG_FORMAT", "xml"),
        ("worker", "WORKER_CONCURRENCY", "0"),
        ("worker", "WEBHOOK_TIMEOUT_S", "-1"),
        ("worker", "WEBHOOK_MAX_ATTEMPTS", "zero"),
        ("tasks", "WEBHOOK_ALLOW_PRIVATE", "maybe"),
        ("gateway", "GATEWAY_PORT", "lots"),
        ("ai", "AI_PUBLISH_TIMEOUT_S", "-2"),
        ("worker", "WORKER_PUBLISH_TIMEOUT_S", "soon"),
        ("worker", "BROKER_CONNECT_TIMEOUT_S", "-5"),
        ("tasks", "TASKS_DISPATCH_TIMEOUT_S", "never"),
    ],
)
def test_a_bad_value_stops_the_process_with_one_line_naming_it(service, variable, value, tmp_path):
    result = start(service, {**os.environ, variable: value, "INTERNAL_AUTH_TOKEN": "t"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert value not in lines[0]  # values may be secrets: never echoed


def test_hop_timeouts_default_from_settings():
    """The modules that wait on a hop take their default from the settings, so the
    figure is written once (``taskmesh.settings``)."""
    assert (
        default("ai_publish_timeout_s") == AiSettings.model_fields["ai_publish_timeout_s"].default
    )
    with pytest.raises(KeyError):
        default("no_such_setting")
    from services.ai.transport.servicer import AiServicer
    from services.worker.settle import Settler

    assert inspect.signature(AiServicer).parameters["publish_timeout_s"].default == default(
        "ai_publish_timeout_s"
    )
    assert inspect.signature(Settler).parameters["publish_timeout_s"].default == default(
        "worker_publish_timeout_s"
    )
