"""The Tasks service's way to the AI service: ExecuteCapability (ASYNC), over a
channel made by ``taskmesh.rpc.client.channel(..., token=...)`` (credentials,
deadline forwarding and domain errors are its interceptor's)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services.tasks.domain import models as m
from services.tasks.transport.convert import ts
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.rpc.calls import REQUEST_ID_KEY


class AiDispatcher:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = ai_pb2_grpc.AiServiceStub(channel)

    async def dispatch(self, job: m.Job, reservation: m.ReservationInfo, timeout: float) -> None:
        request = ai_pb2.ExecuteCapabilityRequest(
            capability=jobs_pb2.CAPABILITY_PARSE_TASK,
            pattern=ai_pb2.EXECUTION_PATTERN_ASYNC,
            job_id=job.id,
            user_id=job.user_id,
            parse_task=jobs_pb2.ParseTaskInput(
                natural_language=job.natural_language,
                config=default_config(),
                reference_time=ts(job.created_at),
            ),
            reservation=jobs_pb2.Reservation(
                tokens=reservation.tokens,
                window_start=ts(datetime.fromtimestamp(reservation.window_start, UTC)),
            ),
        )
        await self._stub.ExecuteCapability(
            request,
            timeout=timeout,
            metadata=((REQUEST_ID_KEY, job.request_id),) if job.request_id else (),
        )
