"""taskmesh.ai.v1.AiService over grpc.aio."""

from __future__ import annotations

import logging

import grpc

from services.ai.domain.execute import CapabilityExecutor, Enqueue
from taskmesh import errors, metrics
from taskmesh.ai.v1 import ai_pb2, ai_pb2_grpc
from taskmesh.capabilities.errors import (
    BudgetExhaustedError,
    InvalidOutputError,
    LLMRejectedError,
    LLMTransientError,
)
from taskmesh.error_table import kind_of
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.logs import bind, request_id_var
from taskmesh.rpc.client import remaining, valid_request_id
from taskmesh.rpc.status import status_of
from taskmesh.settings import default

log = logging.getLogger(__name__)

SERVICE_NAME = ai_pb2.DESCRIPTOR.services_by_name["AiService"].full_name
#: Items of one ExecuteCapabilities call at most: the screen and the confirm wait of a batch
#: stay bounded (the Tasks service sends at most ``MAX_BATCH`` of ai_client).
MAX_BATCH_ITEMS = 1024


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
            raise _no_input()
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
            # The caller's x-request-id (bound by the server's interceptor) wins over the field.
            await self.executor.enqueue(
                _enqueue(request, request_id_var.get() or _request_id(request)),
                timeout=remaining(context, self.publish_timeout_s),
            )
        return ai_pb2.ExecuteCapabilityResponse(accepted=True)

    async def ExecuteCapabilities(  # noqa: N802 - gRPC names
        self,
        request: ai_pb2.ExecuteCapabilitiesRequest,
        context: grpc.aio.ServicerContext,
    ) -> ai_pb2.ExecuteCapabilitiesResponse:
        """Each item as the unary ASYNC call would answer it, in order: accepted, or the
        status (code, message, details) it would have failed with. The items' confirms are
        awaited together, at most ``publish_timeout_s`` or the call's deadline. Raises
        InvalidInput (the whole call) above MAX_BATCH_ITEMS items."""
        count = len(request.requests)
        if count > MAX_BATCH_ITEMS:
            raise errors.InvalidInput(
                f"at most {MAX_BATCH_ITEMS} requests per call",
                [errors.FieldViolation("requests", f"at most {MAX_BATCH_ITEMS} items")],
            )
        outcomes: list[errors.TaskmeshError | None] = [None] * count
        items: list[Enqueue] = []
        positions: list[int] = []
        for i, item in enumerate(request.requests):
            if item.WhichOneof("input") != "parse_task":
                outcomes[i] = _no_input()
            elif item.pattern != ai_pb2.EXECUTION_PATTERN_ASYNC:
                outcomes[i] = errors.InvalidInput(
                    "pattern must be ASYNC in ExecuteCapabilities",
                    [errors.FieldViolation("pattern", "must be ASYNC")],
                )
            else:
                items.append(_enqueue(item, _request_id(item)))
                positions.append(i)
        queued = await self.executor.enqueue_many(
            items, timeout=remaining(context, self.publish_timeout_s)
        )
        for i, outcome in zip(positions, queued, strict=True):
            outcomes[i] = outcome
        response = ai_pb2.ExecuteCapabilitiesResponse()
        codes: dict[str, int] = {}
        logged = log.isEnabledFor(logging.INFO)
        for item, outcome in zip(request.requests, outcomes, strict=True):
            result = response.results.add()
            if outcome is None:
                result.response.accepted = True
            else:
                result.error.CopyFrom(status_of(outcome))
            code = "OK" if outcome is None else kind_of(outcome).code.name
            codes[code] = codes.get(code, 0) + 1
            if logged:
                # One line per item, as the unary call's own "rpc" line: the job's request
                # id and job id reach this service's log (SPEC §12), as the line's own
                # fields (the log filter keeps them over the call's context).
                log.info(
                    "rpc item",
                    extra={
                        "rpc": "ExecuteCapabilities",
                        "code": code,
                        "request_id": _request_id(item),
                        "job_id": item.job_id or None,
                    },
                )
        for code, count in codes.items():
            metrics.labelled(metrics.batch_items, SERVICE_NAME, "ExecuteCapabilities", code).inc(
                count
            )
        return response

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


def _no_input() -> errors.InvalidInput:
    return errors.InvalidInput("an input is required", [errors.FieldViolation("input", "required")])


def _request_id(request: ai_pb2.ExecuteCapabilityRequest) -> str | None:
    # A caller's junk must not reach the logs or the queue (as with the x-request-id metadata).
    return request.request_id if valid_request_id(request.request_id) else None


def _enqueue(request: ai_pb2.ExecuteCapabilityRequest, request_id: str | None) -> Enqueue:
    return Enqueue(
        job_id=request.job_id,
        user_id=request.user_id,
        capability=request.capability,
        task_input=request.parse_task,
        reservation=request.reservation,
        request_id=request_id,
        trace_context=dict(request.trace_context),
    )


def registrar(servicer: AiServicer):
    def register(server: grpc.aio.Server) -> None:
        ai_pb2_grpc.add_AiServiceServicer_to_server(servicer, server)

    return register
