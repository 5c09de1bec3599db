"""Configuration of every taskmesh process, read from the environment and `.env`.

One typed class per process (``GatewaySettings``, ``TasksSettings``,
``AiSettings``, ``WorkerSettings``, ``SimulatorSettings``), each composed of the
groups it needs (broker, internal RPC, database, LLM, jobs, webhooks, metrics,
process), so a process validates its own variables and no others. ``Settings``
composes them all, for the launcher (``taskmesh up``) and the operator commands.

Every field carries its default, unit and meaning (``Field(description=…)``);
variable names are the fields' names upper-cased (SPEC §4). A bad value stops
the process at start with one line naming the variable (``load_settings``).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The queue every capability job is published to (SPEC §7).
DEFAULT_JOB_QUEUE = "ai-capability-jobs"

#: A TCP port; 0 turns a listener off where the variable says so.
Port = Annotated[int, Field(ge=0, le=65535)]


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)


# --- shared groups ----------------------------------------------------------------------


class RpcSettings(_Group):
    """Internal gRPC: addresses, the internal token, optional TLS (taskmesh/rpc/tls.py)."""

    tasks_grpc_addr: str = Field(
        "127.0.0.1:50051", description="HOST:PORT of the Tasks service (listen and dial)."
    )
    ai_grpc_addr: str = Field(
        "127.0.0.1:50052", description="HOST:PORT of the AI service (listen and dial)."
    )
    internal_auth_token: SecretStr | None = Field(
        None,
        description="Shared secret every internal gRPC call carries as "
        "`authorization: Bearer …`; required by every service (`taskmesh up` generates one).",
    )
    grpc_tls_cert: FilePath | None = Field(
        None,
        description="PEM certificate chain of this process: servers serve TLS, clients "
        "present it. Unset: plaintext.",
    )
    grpc_tls_key: FilePath | None = Field(
        None, description="PEM private key of GRPC_TLS_CERT (set both or neither)."
    )
    grpc_tls_ca: FilePath | None = Field(
        None,
        description="PEM CA bundle: clients verify servers against it; servers require "
        "client certificates signed by it (mTLS).",
    )
    grpc_tls_server_name: str | None = Field(
        None, description="Name server certificates are checked against instead of the host."
    )
    grpc_call_timeout_s: float = Field(
        5.0,
        gt=0,
        le=120,
        description="Deadline of an internal gRPC call that names none, seconds "
        "(taskmesh/rpc/calls.py): far above a healthy answer, below an HTTP client's patience; "
        "a call made while serving one gets at most what is left of that call's deadline.",
    )

    @field_validator("tasks_grpc_addr", "ai_grpc_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if (
            not sep
            or not host
            or not (port.isascii() and port.isdigit())
            or not 0 <= int(port) <= 65535
        ):
            raise ValueError("expected HOST:PORT")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> RpcSettings:
        if self.grpc_tls_cert is not None and self.grpc_tls_key is None:
            raise ValueError("GRPC_TLS_KEY: must be set with GRPC_TLS_CERT")
        if self.grpc_tls_key is not None and self.grpc_tls_cert is None:
            raise ValueError("GRPC_TLS_CERT: must be set with GRPC_TLS_KEY")
        return self

    def require_internal_token(self) -> str:
        """The internal token; exits (status 2, one line naming INTERNAL_AUTH_TOKEN) if unset."""
        if self.internal_auth_token is None or not self.internal_auth_token.get_secret_value():
            fail("INTERNAL_AUTH_TOKEN", "must be set (taskmesh up generates one)")
        assert self.internal_auth_token is not None
        return self.internal_auth_token.get_secret_value()


class BrokerSettings(_Group):
    """RabbitMQ: where, which queue, how long a connection attempt may take."""

    rabbitmq_url: str = Field(
        "amqp://guest:guest@localhost:5672/", description="Broker URL (amqp:// or amqps://)."
    )
    job_queue: str = Field(
        DEFAULT_JOB_QUEUE,
        min_length=1,
        max_length=200,
        description="Main job queue; its retry queues and dead-letter queue are named after it.",
    )
    broker_connect_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds one connection attempt to the broker may take; attempts repeat "
        "until the broker answers or the process stops.",
    )

    @field_validator("rabbitmq_url")
    @classmethod
    def _amqp(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("expected amqp://… or amqps://…")
        return value


class DatabaseSettings(_Group):
    """The Tasks service's storage."""

    database_url: str = Field(
        "sqlite+aiosqlite:///./taskmesh.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite://… or postgresql+asyncpg://….",
    )

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite://… or postgresql+asyncpg://…")
        return value


class LlmSettings(_Group):
    """The OpenAI-compatible endpoint and how parse-task calls it."""

    openai_api_key: SecretStr | None = Field(
        None, description="API key; may stay unset for servers that need none (the simulator)."
    )
    openai_base_url: str | None = Field(
        None, description="Endpoint base URL (…/v1); unset means OpenAI."
    )
    openai_model: str = Field("gpt-4.1-mini", description="Model name sent with every call.")
    openai_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds per LLM call. The SDK does not retry: the queue owns retries.",
    )
    openai_response_format: Literal["auto", "json_schema", "json_object", "none"] = Field(
        "auto",
        description="Structured-output mode: `auto` tries json_schema, then json_object with "
        "the schema in the prompt, then none, remembering per endpoint what it accepts.",
    )
    openai_max_tokens_core: int = Field(
        400,
        ge=16,
        le=32_768,
        description="Output bound (max_tokens) of the core call, tokens: bounds a job's cost.",
    )
    openai_max_tokens_subtasks: int = Field(
        300, ge=16, le=32_768, description="Output bound (max_tokens) of the subtasks call, tokens."
    )
    parse_task_prompt_version: str = Field(
        "v2",
        pattern=r"^v[0-9]+$",
        description="Prompt version (files under taskmesh/capabilities/parse_task/prompts/).",
    )


class JobSettings(_Group):
    """How long and how often a job may run (SPEC §7, §8)."""

    job_max_attempts: int = Field(
        5, ge=1, le=100, description="Attempts before a job is dead-lettered and failed."
    )
    job_timeout_s: float = Field(
        900.0,
        gt=0,
        description="Seconds after which an unfinished job is failed TIMED_OUT and its "
        "reservation released.",
    )


class WebhookSettings(_Group):
    """Client webhooks (SPEC §5)."""

    webhook_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds one delivery attempt may take (connect + answer).",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="Delivery attempts (the first included) before giving up."
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow URLs resolving to loopback/private/link-local/reserved addresses "
        "(local development and tests only).",
    )


class MetricsSettings(_Group):
    """Where the Prometheus endpoint of a gRPC service or the worker binds."""

    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics endpoints bind; 0.0.0.0 where Prometheus scrapes "
        "from another host.",
    )


class ProcessSettings(_Group):
    """Every process: logs and shutdown."""

    shutdown_grace_s: float = Field(
        30.0, ge=0, description="Seconds in-flight work may take to finish after SIGTERM/SIGINT."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged (any case)."
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="`json`: one event per line; `console`: for humans."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


# --- one class per process ----------------------------------------------------------------
# Groups are listed in one order everywhere (broker, database, LLM, jobs, webhooks,
# metrics, then the service's own), so ``Settings`` can compose every process class.


class ServiceSettings(RpcSettings, ProcessSettings):
    """What every gRPC-speaking process needs (``launcher.service.run_service``)."""


class GatewaySettings(JobSettings, ServiceSettings):
    """``taskmesh gateway``: the HTTP API."""

    gateway_host: str = Field("127.0.0.1", description="HTTP listen address.")
    gateway_port: Port = Field(8080, description="HTTP listen port.")


class TasksSettings(
    BrokerSettings, DatabaseSettings, JobSettings, WebhookSettings, MetricsSettings,
    ServiceSettings,
):  # fmt: skip
    """``taskmesh tasks``: owns the database, the budgets and the job lifecycle."""

    tasks_metrics_port: Port = Field(9101, description="Prometheus port; 0: off.")
    taskmesh_dev_api_key: SecretStr | None = Field(
        None,
        description="When set and no user exists, the user `dev` is created with this key "
        "(16-200 printable ASCII characters).",
    )
    redis_url: str | None = Field(
        None, description="When set, the API rate limiter's buckets live in Redis, shared."
    )
    rate_limit_bucket_size: int = Field(
        100, ge=1, description="Per-user API token bucket capacity, requests."
    )
    rate_limit_refill_per_s: float = Field(
        10.0, gt=0, description="Per-user API token bucket refill, requests per second."
    )
    token_window_s: int = Field(
        86_400, ge=1, description="LLM token budget window, seconds, aligned to the epoch."
    )
    token_window_limit: int = Field(100_000, ge=0, description="LLM tokens per user per window.")
    parse_task_token_estimate: int = Field(
        2_500, ge=1, description="Tokens reserved for each parse-task job before it is queued."
    )
    tasks_dispatch_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds CreateTask waits for the AI service to accept a job (less if "
        "the caller's deadline is nearer); past it the job is withdrawn and the client gets 503.",
    )
    tasks_relay_publish_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds the webhook relay waits for the broker to confirm one event.",
    )

    @field_validator("taskmesh_dev_api_key")
    @classmethod
    def _api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # SPEC §4: 16-200 printable ASCII; no prefix required. Spaces at the ends
        # could never arrive: HTTP trims them from the Authorization header.
        if value is None or not value.get_secret_value():
            return None
        key = value.get_secret_value()
        if not 16 <= len(key) <= 200 or not all(" " <= c <= "~" for c in key):
            raise ValueError("must be 16-200 printable ASCII characters")
        if key != key.strip():
            raise ValueError("must not begin or end with a space")
        return value


class AiSettings(BrokerSettings, LlmSettings, MetricsSettings, ServiceSettings):
    """``taskmesh ai``: validates, screens and publishes jobs (and runs the sync pattern)."""

    ai_metrics_port: Port = Field(9102, description="Prometheus port; 0: off.")
    ai_publish_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds ExecuteCapability waits for the broker to confirm a job, and "
        "ExecuteCapabilities the jobs of a batch together (less if the caller's deadline is "
        "nearer); an unconfirmed job was not accepted.",
    )


class WorkerSettings(
    BrokerSettings, LlmSettings, JobSettings, WebhookSettings, MetricsSettings, ServiceSettings
):
    """``taskmesh worker``: runs jobs and delivers client webhooks."""

    worker_metrics_port: Port = Field(9103, description="Prometheus port; 0: off.")
    worker_concurrency: int = Field(
        64, ge=1, le=10_000, description="Jobs in flight per worker process (= AMQP prefetch)."
    )
    worker_publish_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds the worker waits for the broker to confirm a message it moves "
        "(a job to a retry or dead-letter queue, a webhook event to its retry queue).",
    )
    webhook_lookup_timeout_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds the Tasks service may take to name an event's webhook endpoint.",
    )


class SimulatorSettings(ProcessSettings):
    """``taskmesh llm-sim``: the LLM simulator (its LLM_SIM_* knobs: llm_sim.options)."""

    llm_sim_port: Port = Field(8089, description="Listen port of the simulator.")


class Settings(GatewaySettings, TasksSettings, AiSettings, WorkerSettings, SimulatorSettings):  # type: ignore[misc]  # the pydantic plugin types each base's generated model_construct by its own fields; this union of them has all
    """Every process's settings: for ``taskmesh up``, which starts them all, and the
    operator commands."""


S = TypeVar("S", bound=_Group)


def default(field: str) -> Any:
    """The default of a setting, for code that runs without loaded settings (tests,
    libraries): the figure is written once, here. Raises KeyError for an unknown field."""
    return Settings.model_fields[field].default


def fail(variable: str, message: str) -> None:
    """Prints ``taskmesh: invalid configuration: VARIABLE: message`` and exits with status 2."""
    print(f"taskmesh: invalid configuration: {variable}: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_settings(kind: type[S] = Settings, /, **overrides: Any) -> S:  # type: ignore[assignment]  # the default is an S
    """``kind`` read from the environment (and ``overrides``); exits with one line
    naming the bad variable (status 2). The value is never echoed: it may be a secret."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        if err["loc"]:
            fail(str(err["loc"][0]).upper(), err["msg"])
        # A rule across variables names its variable first: "Value error, NAME: message".
        variable, _, message = str(err["msg"]).removeprefix("Value error, ").partition(": ")
        fail(variable, message)
        raise  # unreachable


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
