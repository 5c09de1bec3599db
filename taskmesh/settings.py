"""Configuration of every taskmesh process, read from the environment and `.env`.

One typed object per process, validated at start: a bad value stops the
process with one line naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The queue every capability job is published to (SPEC §7).
DEFAULT_JOB_QUEUE = "ai-capability-jobs"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # --- infrastructure -------------------------------------------------------------
    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"
    #: SQLAlchemy async URL; ``postgresql+asyncpg://…`` for PostgreSQL.
    database_url: str = "sqlite+aiosqlite:///./taskmesh.db"
    #: When set, the API rate limiter's buckets live in Redis and are shared.
    redis_url: str | None = None
    #: Main job queue; its retry queues and DLQ are named after it.
    job_queue: str = Field(DEFAULT_JOB_QUEUE, min_length=1, max_length=200)

    # --- listen / dial addresses ----------------------------------------------------
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8080, ge=0, le=65535)
    tasks_grpc_addr: str = "127.0.0.1:50051"
    ai_grpc_addr: str = "127.0.0.1:50052"
    #: Prometheus ports of the gRPC services and the worker; 0 turns one off.
    tasks_metrics_port: int = Field(9101, ge=0, le=65535)
    ai_metrics_port: int = Field(9102, ge=0, le=65535)
    worker_metrics_port: int = Field(9103, ge=0, le=65535)
    #: Address the metrics endpoints bind; 0.0.0.0 where Prometheus scrapes from another host.
    metrics_host: str = "127.0.0.1"

    # --- secrets --------------------------------------------------------------------
    #: Shared secret every internal gRPC call carries as ``authorization: Bearer …``.
    internal_auth_token: SecretStr | None = None
    #: When set and no user exists, Tasks creates the user ``dev`` with this key.
    taskmesh_dev_api_key: SecretStr | None = None

    # --- gRPC TLS (off unless set; taskmesh/rpc/tls.py) --------------------------------
    #: PEM certificate chain and key of this process: servers serve TLS, clients present them.
    grpc_tls_cert: FilePath | None = None
    grpc_tls_key: FilePath | None = None
    #: PEM CA bundle: clients dial TLS verifying servers; servers require client certs (mTLS).
    grpc_tls_ca: FilePath | None = None
    #: Name the server certificates are checked against instead of the dialled host.
    grpc_tls_server_name: str | None = None

    # --- LLM ------------------------------------------------------------------------
    openai_api_key: SecretStr | None = None
    #: None means the SDK's default (OpenAI).
    openai_base_url: str | None = None
    openai_model: str = "gpt-4.1-mini"
    #: Per-call timeout, seconds. The SDK's own retries stay small: the queue owns retries.
    openai_timeout_s: float = Field(30.0, gt=0, le=600)
    #: Structured-output mode: ``auto`` tries json_schema, then json_object with the schema in
    #: the prompt, then none, remembering per endpoint what it accepts (issue 14).
    openai_response_format: Literal["auto", "json_schema", "json_object", "none"] = "auto"
    #: Output bound (``max_tokens``) per call kind: a runaway generation stops there, and a
    #: job's cost is bounded (SPEC §8). Sized for the longest valid answer with headroom.
    openai_max_tokens_core: int = Field(400, ge=16, le=32_768)
    openai_max_tokens_subtasks: int = Field(300, ge=16, le=32_768)
    #: Prompt versions (files under taskmesh/capabilities/parse_task/prompts/).
    parse_task_prompt_version: str = Field("v2", pattern=r"^v[0-9]+$")

    # --- jobs -----------------------------------------------------------------------
    #: Jobs in flight per worker process; also the AMQP prefetch.
    worker_concurrency: int = Field(64, ge=1, le=10_000)
    #: Attempts before a job is dead-lettered and failed.
    job_max_attempts: int = Field(5, ge=1, le=100)
    #: Seconds after which an unfinished job is failed and its reservation released.
    job_timeout_s: float = Field(900.0, gt=0)

    # --- budgets --------------------------------------------------------------------
    #: Per-user API token bucket: capacity (requests) and refill (requests per second).
    rate_limit_bucket_size: int = Field(100, ge=1)
    rate_limit_refill_per_s: float = Field(10.0, gt=0)
    #: Per-user LLM token budget per fixed window (seconds, aligned to the epoch).
    token_window_s: int = Field(86_400, ge=1)
    token_window_limit: int = Field(100_000, ge=0)
    #: Tokens reserved for each parse-task job before it is queued.
    parse_task_token_estimate: int = Field(2_500, ge=1)

    # --- client webhooks (SPEC §5) -----------------------------------------------------
    #: Seconds one delivery attempt may take (connect + answer) before it counts as failed.
    webhook_timeout_s: float = Field(10.0, gt=0, le=300)
    #: Delivery attempts (the first included) before an event is given up.
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    #: Allow webhook URLs resolving to loopback/private/link-local/reserved addresses
    #: (local development and tests only).
    webhook_allow_private: bool = False

    # --- simulator ------------------------------------------------------------------
    llm_sim_port: int = Field(8089, ge=0, le=65535)

    # --- process --------------------------------------------------------------------
    #: Seconds in-flight work may take to finish after SIGTERM/SIGINT.
    shutdown_grace_s: float = Field(30.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("tasks_grpc_addr", "ai_grpc_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("expected HOST:PORT")
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("expected sqlite+aiosqlite://… or postgresql+asyncpg://…")
        return value

    @field_validator("rabbitmq_url")
    @classmethod
    def _amqp(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("expected amqp://… or amqps://…")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if self.grpc_tls_cert is not None and self.grpc_tls_key is None:
            raise ValueError("GRPC_TLS_KEY: must be set with GRPC_TLS_CERT")
        if self.grpc_tls_key is not None and self.grpc_tls_cert is None:
            raise ValueError("GRPC_TLS_CERT: must be set with GRPC_TLS_KEY")
        return self

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

    def require_internal_token(self) -> str:
        if self.internal_auth_token is None or not self.internal_auth_token.get_secret_value():
            fail("INTERNAL_AUTH_TOKEN", "must be set (taskmesh up generates one)")
        assert self.internal_auth_token is not None
        return self.internal_auth_token.get_secret_value()


def fail(variable: str, message: str) -> None:
    print(f"taskmesh: invalid configuration: {variable}: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; exits with one line naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates the overrides' types
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
