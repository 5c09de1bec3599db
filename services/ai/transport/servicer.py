"""taskmesh.ai.v1.AiService over grpc.aio."""

from __future__ import annotations

import grpc

from services.ai.domain.execute import CapabilityExecutor
from taskmesh import errors
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc
from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
)
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.logs import bind, request_id_var
from taskmesh.rpc.client import remaining
from taskmesh.settings import default

SERVICE_NAME = ai_pb2.DESCRIPTOR.services_by_name["AiService"].full_name


class AiServicer(ai_pb2_grpc.AiServiceServicer):
    """``ExecuteCapability`` waits at most ``publish_timeout_s`` (AI_PUBLISH_TIMEOUT_S)
    for the broker's confirm, less when the caller's deadline is nearer."""

    def __init__(
        self,
        executor: CapabilityExecutor,
        publish_timeout_s: float = default("ai_publish_timeout_s"),
    ) -> None:
        self.executor = executor
        self.publish_timeout_s = publish_timeout_s

    async def ExecuteCapability(  # noqa: N802 - gRPC names
        self,
        request: ai_pb2.ExecuteCapabilityRequest,
        context: grpc.aio.ServicerContext,
    ) -> ai_pb2.ExecuteCapabilityResponse:
        if request.WhichOneof("input") != "parse_task":
            raise errors.InvalidInput(
                "an input is required", [errors.FieldViolation("input", "required")]
            )
        if request.pattern == ai_pb2.EXECUTION_PATTERN_SYNC:
            try:
                result = await self.executor.run(request.capability, request.parse_task)
            except LLMTransientError:
                raise errors.Unavailable(
                    "The language model is unavailable.", retry_after_s=5
                ) from None
            except InvalidOutputError:
                raise errors.FailedPrecondition("The model's output failed validation.") from None
            except (LLMRejectedError, BudgetExhaustedError):
                raise errors.FailedPrecondition("The language model refused the request.") from None
            response = ai_pb2.ExecuteCapabilityResponse(accepted=True, usage=result.usage)
            if result.vague is not None:
                response.vague_input.CopyFrom(result.vague)
            elif result.output is not None:
                response.parse_task.CopyFrom(result.output)
            return response
        if request.pattern != ai_pb2.EXECUTION_PATTERN_ASYNC:
            raise errors.InvalidInput(
                "pattern must be ASYNC or SYNC", [errors.FieldViolation("pattern", "required")]
            )
        with bind(job_id=request.job_id or None):
            await self.executor.enqueue(
                job_id=request.job_id,
                user_id=request.user_id,
                capability=request.capability,
                task_input=request.parse_task,
                reservation=request.reservation,
                request_id=request_id_var.get(),
                timeout=remaining(context, self.publish_timeout_s),
            )
        return ai_pb2.ExecuteCapabilityResponse(accepted=True)

    async def ListCapabilities(  # noqa: N802
        self,
        request: ai_pb2.ListCapabilitiesRequest,
        context: grpc.aio.ServicerContext,
    ) -> ai_pb2.ListCapabilitiesResponse:
        return ai_pb2.ListCapabilitiesResponse(
            capabilities=[
                ai_pb2.CapabilityInfo(
                    capability=jobs_pb2.CAPABILITY_PARSE_TASK,
                    name="parse-task",
                    description="Turns one sentence into a structured task with subtasks.",
                    patterns=[ai_pb2.EXECUTION_PATTERN_ASYNC, ai_pb2.EXECUTION_PATTERN_SYNC],
                )
            ]
        )


def registrar(servicer: AiServicer):
    def register(server: grpc.aio.Server) -> None:
        ai_pb2_grpc.add_AiServiceServicer_to_server(servicer, server)

    return register
