"""Database tables of the Tasks service (SQLAlchemy 2 declarative).

Schema changes go through Alembic (storage/migrations); this module is the
model the migrations are written against."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Every model here is mapped to a Table of its own (SQLAlchemy types it as the wider
    # FromClause, which insert/update/delete do not accept).
    __table__: ClassVar[Table]


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    #: SHA-256 of the key: keys are long random strings, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_idempotency_key"),
        Index("ix_jobs_open_deadline", "state", "deadline_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    capability: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(16))
    natural_language: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Bumped on every state change; WatchJob streams it as the event id.
    version: Mapped[int] = mapped_column(Integer, default=1)
    error_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_suggestions: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the broker confirmed a job submitted with an Idempotency-Key (migration 0002);
    #: null while its dispatch is in flight. Unkeyed jobs are never replayed: left null.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Reservation(Base):
    """Tokens held for one job in one budget window, until the job settles."""

    __tablename__ = "token_reservations"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    #: Actual usage charged for the job (None until charged).
    actual_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Charge(Base):
    """Tokens charged for an earlier run of a job that was reopened (dead-letter replay):
    the job's reservation row then holds the new run, and this keeps the old charge in
    the window it was made in, so the ledger still balances (migration 0002)."""

    __tablename__ = "token_charges"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    #: 1 for the run before the first reopen, 2 before the second, …
    run: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    window_start: Mapped[int] = mapped_column(BigInteger)
    tokens: Mapped[int] = mapped_column(BigInteger)
    charged_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LlmCallUsage(Base):
    """One LLM call of a job, recorded with the charge that includes it (migration 0004):
    ``taskmesh ledger check`` compares a job's charges with the sum of its calls."""

    __tablename__ = "llm_call_usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    #: "core", "subtasks", … ("unitemized": a charge from before migration 0004).
    operation: Mapped[str] = mapped_column(String(40))
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    #: The call was charged its bound (no usage reported, or abandoned).
    estimated: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenWindow(Base):
    """A user's LLM token ledger for one fixed window (epoch-aligned start, seconds)."""

    __tablename__ = "token_windows"
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_user_created", "user_id", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    #: Unique: exactly one task per job, however often the job is delivered.
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    category: Mapped[str] = mapped_column(String(40))
    priority_level: Mapped[str] = mapped_column(String(40))
    priority_score: Mapped[int] = mapped_column(Integer)
    priority_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subtask(Base):
    __tablename__ = "subtasks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)


class WebhookEndpoint(Base):
    """A user's webhook endpoint (SPEC §5). Deleting the row stops its deliveries."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    #: Subscribed event types, e.g. ["job.succeeded", "job.failed"].
    events: Mapped[list[str]] = mapped_column(JSON)
    #: Standard Webhooks signing secret, "whsec_" + base64.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookOutbox(Base):
    """Transactional outbox: one row per (event, endpoint), written in the
    transaction that makes a job terminal, deleted once the broker confirmed it."""

    __tablename__ = "webhook_outbox"
    #: The event's webhook-id ("msg_…"), stable across delivery attempts.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    job_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: A relay that took the row owns it until then; after, another may take it.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
