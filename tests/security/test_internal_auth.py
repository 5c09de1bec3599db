"""The internal gRPC services answer only callers holding the internal token;
health and reflection stay open; the token is never written to a log; the
worker-only RPCs cannot be reached through the HTTP gateway."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from taskmesh.admin.v1 import admin_pb2
from taskmesh.ai.v1 import ai_pb2
from taskmesh.tasks.v1 import tasks_pb2
from tests.support.gateway import assert_problem
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TASKS = tasks_pb2.DESCRIPTOR.services_by_name["TasksService"]
AI = ai_pb2.DESCRIPTOR.services_by_name["AiService"]
#: Served by the Tasks process beside TasksService (users, keys, ledger, dead-letter reopen).
ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
METHODS = [(s, m) for s in (TASKS, ADMIN, AI) for m in s.methods]

BAD_CREDENTIALS = {
    "none": None,
    "wrong-token": "Bearer not-the-internal-token",
    "no-scheme": "{token}",
    "token-plus-suffix": "Bearer {token}x",
    "empty-bearer": "Bearer ",
}


async def _call(
    addr: str,
    service: descriptor.ServiceDescriptor,
    method: descriptor.MethodDescriptor,
    metadata: list[tuple[str, str]],
) -> None:
    """Calls ``method`` with an empty request, consuming a stream to its end."""
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{service.full_name}/{method.name}"
    async with grpc.aio.insecure_channel(addr) as channel:
        if method.server_streaming:
            stream = channel.unary_stream(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            async for _ in stream(request_class(), metadata=metadata, timeout=10):
                pass
        else:
            unary = channel.unary_unary(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            await unary(request_class(), metadata=metadata, timeout=10)


def _addr(stack: Stack, service: descriptor.ServiceDescriptor) -> str:
    return stack.ai_addr if service is AI else stack.tasks_addr


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
@pytest.mark.parametrize(
    ("service", "method"), METHODS, ids=[f"{s.name}.{m.name}" for s, m in METHODS]
)
async def test_every_rpc_refuses_a_caller_without_the_token(
    stack: Stack,
    service: descriptor.ServiceDescriptor,
    method: descriptor.MethodDescriptor,
    credentials: str,
) -> None:
    template = BAD_CREDENTIALS[credentials]
    metadata = [] if template is None else [("authorization", template.format(token=stack.token))]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(_addr(stack, service), service, method, metadata)

    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stack.token not in (refused.value.details() or "")


async def test_the_token_opens_the_same_door(stack: Stack) -> None:
    """The refusals above are about the token, not about the calls themselves."""
    metadata = [("authorization", f"Bearer {stack.token}")]
    listed = ai_pb2.ListCapabilitiesResponse()
    async with grpc.aio.insecure_channel(stack.ai_addr) as channel:
        rpc = channel.unary_unary(
            "/taskmesh.ai.v1.AiService/ListCapabilities",
            request_serializer=ai_pb2.ListCapabilitiesRequest.SerializeToString,
            response_deserializer=ai_pb2.ListCapabilitiesResponse.FromString,
        )
        listed = await rpc(ai_pb2.ListCapabilitiesRequest(), metadata=metadata, timeout=10)
    assert [c.name for c in listed.capabilities] == ["parse-task"]


@pytest.mark.parametrize("which", ["tasks", "ai"])
async def test_health_and_reflection_need_no_token(stack: Stack, which: str) -> None:
    addr = stack.tasks_addr if which == "tasks" else stack.ai_addr
    expected = TASKS.full_name if which == "tasks" else AI.full_name
    async with grpc.aio.insecure_channel(addr) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: list[str] = []
        async for answer in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        ):
            names.extend(s.name for s in answer.list_services_response.service)

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert expected in names


def test_the_internal_token_is_in_no_log(stack: Stack) -> None:
    # Enough traffic that every service has logged about requests.
    with stack.http(stack.api_key) as http:
        accepted = http.post("/api/v1/tasks", json={"naturalLanguage": "Renew the passport"})
        assert accepted.status_code == 202, accepted.text
        http.get("/api/v1/usage", headers={"Authorization": f"Bearer {stack.token}"})
    logs = stack.all_logs()

    assert set(logs) >= {"gateway", "tasks", "ai", "worker"}
    for name, text in logs.items():
        assert stack.token not in text, f"the internal token is in {name}.log"


_JOB = str(uuid.uuid4())
_WORKER_ONLY_ROUTES: list[tuple[str, str]] = [
    ("POST", f"/api/v1/jobs/{_JOB}"),
    ("PUT", f"/api/v1/jobs/{_JOB}"),
    ("PATCH", f"/api/v1/jobs/{_JOB}"),
    ("DELETE", f"/api/v1/jobs/{_JOB}"),
    ("POST", f"/api/v1/jobs/{_JOB}/start"),
    ("POST", f"/api/v1/jobs/{_JOB}/complete"),
    ("PUT", f"/api/v1/jobs/{_JOB}/complete"),
    ("POST", f"/api/v1/jobs/{_JOB}:complete"),
    ("POST", f"/api/v1/jobs/{_JOB}/events"),
    ("POST", "/api/v1/jobs"),
    ("POST", "/api/v1/StartJob"),
    ("POST", "/api/v1/CompleteJob"),
    ("POST", "/api/v1/complete"),
    ("POST", "/taskmesh.tasks.v1.TasksService/StartJob"),
    ("POST", "/taskmesh.tasks.v1.TasksService/CompleteJob"),
    ("POST", "/taskmesh.tasks.v1.TasksService/CheckJobs"),
    ("POST", "/taskmesh.tasks.v1.TasksService/ReserveTokens"),
    ("POST", "/api/v1/ReserveTokens"),
    ("POST", f"/api/v1/jobs/{_JOB}/reserve"),
    ("POST", "/api/v1/CheckJobs"),
    ("POST", "/api/v1/jobs/check"),
    ("POST", "/internal/jobs/complete"),
    ("POST", "/webhook"),
    ("POST", "/api/v1/webhook"),
    ("POST", f"/api/v1/tasks/{_JOB}"),
    ("PUT", f"/api/v1/tasks/{_JOB}"),
]


@pytest.mark.parametrize(("method", "path"), _WORKER_ONLY_ROUTES)
def test_worker_rpcs_have_no_http_route(stack: Stack, method: str, path: str) -> None:
    outcome: dict[str, Any] = {
        "jobId": _JOB,
        "jobID": _JOB,
        "parseTask": {"title": "Forged Task", "category": "work"},
        "usage": {"inputTokens": 0, "outputTokens": 0},
    }
    with stack.http(stack.api_key) as http:
        response = http.request(method, path, json=outcome)
        grpc_shaped = http.request(
            method,
            path,
            content=b"\x00\x00\x00\x00\x00",
            headers={"Content-Type": "application/grpc", "TE": "trailers"},
        )

    for answer in (response, grpc_shaped):
        assert answer.status_code in (404, 405), answer.text
        assert_problem(answer, answer.status_code)


def test_worker_only_rpcs_are_absent_from_the_api_document(stack: Stack) -> None:
    document = httpx.get(f"{stack.url}/openapi.json", timeout=10).json()
    text = str(document).lower()
    for word in (
        "startjob",
        "completejob",
        "complete_job",
        "start_job",
        "checkjobs",
        "reservetokens",
        "reserve_tokens",
    ):
        assert word not in text
