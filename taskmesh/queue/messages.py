"""AMQP messages carrying a CapabilityJob (SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika

from taskmesh.jobs.v1 import jobs_pb2

CONTENT_TYPE = "application/x-protobuf"
MESSAGE_TYPE = jobs_pb2.CapabilityJob.DESCRIPTOR.full_name
#: Attempts already made (failed) before this delivery.
ATTEMPT_HEADER = "x-taskmesh-attempts"
#: Times the job waited for Tasks to come back (not attempts: no LLM ran).
WAITS_HEADER = "x-taskmesh-waits"
#: Why a message was dead-lettered or retried; shown by ``taskmesh dlq list``.
REASON_HEADER = "x-taskmesh-reason"
#: A finished outcome (serialized CompleteJobRequest) that could not be
#: delivered to Tasks yet: the next delivery reports it without a new LLM run.
OUTCOME_HEADER = "x-taskmesh-outcome"


def job_message(
    job: jobs_pb2.CapabilityJob,
    *,
    attempts: int = 0,
    reason: str | None = None,
    outcome: bytes | None = None,
    waits: int = 0,
) -> aio_pika.Message:
    headers: dict[str, aio_pika.abc.FieldValue] = {ATTEMPT_HEADER: attempts, WAITS_HEADER: waits}
    if reason:
        headers[REASON_HEADER] = reason
    if outcome is not None:
        headers[OUTCOME_HEADER] = bytearray(outcome)  # AMQP byte arrays are bytearray in pamqp
    return aio_pika.Message(
        body=job.SerializeToString(),
        content_type=CONTENT_TYPE,
        type=MESSAGE_TYPE,
        message_id=job.job_id,
        correlation_id=job.request_id or None,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=datetime.now(UTC),
        headers=headers,
    )


class UndecodableMessage(ValueError):
    """The body is not a CapabilityJob this version understands."""


def decode_job(message: aio_pika.abc.AbstractIncomingMessage) -> jobs_pb2.CapabilityJob:
    if message.content_type not in (None, CONTENT_TYPE) or message.type not in (None, MESSAGE_TYPE):
        raise UndecodableMessage(
            f"unexpected content type {message.content_type!r}/{message.type!r}"
        )
    job = jobs_pb2.CapabilityJob()
    try:
        job.ParseFromString(message.body)
    except Exception as exc:  # noqa: BLE001 - the protobuf runtime raises DecodeError variants
        raise UndecodableMessage("body is not a CapabilityJob") from exc
    if not job.job_id or not job.user_id:
        raise UndecodableMessage("job_id and user_id are required")
    return job


def attempts_of(message: aio_pika.abc.AbstractIncomingMessage) -> int:
    return _count(message, ATTEMPT_HEADER)


def waits_of(message: aio_pika.abc.AbstractIncomingMessage) -> int:
    return _count(message, WAITS_HEADER)


def _count(message: aio_pika.abc.AbstractIncomingMessage, header: str) -> int:
    value = (message.headers or {}).get(header, 0)
    return int(value) if isinstance(value, int) and value >= 0 else 0


def pending_outcome(message: aio_pika.abc.AbstractIncomingMessage) -> bytes | None:
    value = (message.headers or {}).get(OUTCOME_HEADER)
    return bytes(value) if isinstance(value, bytes | bytearray) else None


def copy_message(
    message: aio_pika.abc.AbstractIncomingMessage, headers: dict[str, aio_pika.abc.FieldValue]
) -> aio_pika.Message:
    """A persistent copy of a delivery with other headers (dead-lettering, replay)."""
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        type=message.type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers,
    )
