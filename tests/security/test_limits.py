"""Oversized, mistyped and malformed requests get a clear 4xx problem naming
what is wrong, never a 500 or a hang, and the servers keep serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import RunningGateway
from taskmesh.rpc.server import MAX_MESSAGE_BYTES
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.gateway.fakes import ALICE_KEY, FakeTasks
from tests.support.gateway import assert_problem
from tests.support.stack import Stack

TASKS = "/api/v1/tasks"
JSON = {"Content-Type": "application/json"}
#: A well-formed user id no user has.
NOBODY = "00000000-0000-4000-8000-000000000000"


async def _still_serving(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    accepted = await client.post(TASKS, json={"naturalLanguage": "Pay rent tomorrow"})
    assert accepted.status_code == 202, accepted.text


async def test_a_body_over_64_kib_is_413(client: httpx.AsyncClient, fake: FakeTasks) -> None:
    text = "a" * (64 * 1024)
    response = await client.post(TASKS, content=json.dumps({"naturalLanguage": text}), headers=JSON)

    body = assert_problem(response, 413, "payload-too-large")
    assert "64 KiB" in body["detail"]
    assert fake.calls["CreateTask"] == 0
    await _still_serving(client)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, fake: FakeTasks, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(TASKS, content=b'{"naturalLanguage": "x"}', headers=headers)

    assert_problem(response, 415, "unsupported-media-type")
    assert fake.calls["CreateTask"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"naturalLanguage": "unterminated}',
        b"{'naturalLanguage': 'single quotes'}",
        b'{"naturalLanguage": NaN}',
        b'{"naturalLanguage": "a",}',
        b"[" * 10_000 + b"]" * 10_000,
        b"null",
        b'["naturalLanguage"]',
        b'"just a string"',
    ],
    ids=[
        "empty",
        "truncated",
        "unterminated-string",
        "single-quotes",
        "nan",
        "trailing-comma",
        "deeply-nested",
        "null",
        "array",
        "string",
    ],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, fake: FakeTasks, raw: bytes
) -> None:
    response = await client.post(TASKS, content=raw, headers=JSON)

    assert_problem(response, 400, "malformed-request")
    assert fake.calls["CreateTask"] == 0


@pytest.mark.parametrize(
    "raw",
    [b'{"naturalLanguage": "caf\xe9"}', b"\xff\xfe{\x00}\x00", b'{"naturalLanguage": "\xc3\x28"}'],
    ids=["latin-1", "utf-16-bom", "invalid-sequence"],
)
async def test_non_utf8_bytes_are_400(
    client: httpx.AsyncClient, fake: FakeTasks, raw: bytes
) -> None:
    response = await client.post(TASKS, content=raw, headers=JSON)

    body = assert_problem(response, 400, "malformed-request")
    assert "UTF-8" in body["detail"]
    assert fake.calls["CreateTask"] == 0
    await _still_serving(client)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"naturalLanguage": 42}, "naturalLanguage", "must be a string"),
        ({"naturalLanguage": None}, "naturalLanguage", "must be a string"),
        ({"naturalLanguage": ["Pay rent"]}, "naturalLanguage", "must be a string"),
        ({"naturalLanguage": {"text": "Pay rent"}}, "naturalLanguage", "must be a string"),
        ({"naturalLanguage": True}, "naturalLanguage", "must be a string"),
        ({}, "naturalLanguage", "is required"),
        ({"natural_language": "Pay rent"}, "natural_language", "is not a known field"),
        ({"naturalLanguage": "Pay rent", "userId": "u1"}, "userId", "is not a known field"),
        ({"naturalLanguage": "   "}, "naturalLanguage", "must not be empty or only whitespace"),
        ({"naturalLanguage": "x" * 2001}, "naturalLanguage", "at most 2000"),
        ({"naturalLanguage": "Pay \ud800 rent"}, "naturalLanguage", "lone surrogate"),
    ],
    ids=[
        "number",
        "null",
        "array",
        "object",
        "boolean",
        "missing",
        "snake-case",
        "unknown-field",
        "blank",
        "too-long",
        "lone-surrogate",
    ],
)
async def test_wrong_types_and_unknown_fields_are_400_naming_the_field(
    client: httpx.AsyncClient, fake: FakeTasks, body: object, field: str, message: str
) -> None:
    response = await client.post(TASKS, content=json.dumps(body), headers=JSON)

    problem = assert_problem(response, 400, "validation")
    assert field in [e["field"] for e in problem["errors"]]
    assert any(message in e["message"] for e in problem["errors"] if e["field"] == field)
    assert field in problem["detail"]
    assert fake.calls["CreateTask"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"take": "0"}, "take"),
        ({"take": "101"}, "take"),
        ({"take": "ten"}, "take"),
        ({"skip": "-1"}, "skip"),
        ({"skip": "99999999999999999999999"}, "skip"),
        ({"orderBy": "title; DROP TABLE tasks"}, "orderBy"),
        ({"orderDirection": "sideways"}, "orderDirection"),
        ({"category": "x" * 101}, "category"),
        ({"userId": "someone-else"}, "userId"),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_parameter(
    client: httpx.AsyncClient, fake: FakeTasks, params: dict[str, str], field: str
) -> None:
    response = await client.get(TASKS, params=params)

    problem = assert_problem(response, 400, "validation")
    assert field in [e["field"] for e in problem["errors"]]
    assert fake.calls["ListTasks"] == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/tasks/" + "a" * 20_000, {}),
        ("/api/v1/tasks?category=" + "a" * 20_000, {}),
        ("/api/v1/usage", {"X-Padding": "p" * 100_000}),
        ("/api/v1/usage", {f"X-Header-{i}": "v" for i in range(2_000)}),
        ("/api/v1/usage", {"Authorization": "Bearer " + "k" * 20_000}),
    ],
    ids=["long-path", "long-query", "huge-header", "many-headers", "huge-authorization"],
)
async def test_oversized_request_heads_are_a_4xx_problem(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.get(path, headers=headers)

    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code)
    await _still_serving(client)


async def test_an_oversized_head_is_431_not_a_body_limit(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/usage", headers={"X-Padding": "p" * 20_000})

    body = assert_problem(response, 431, "headers-too-large")
    assert "64 KiB" not in body["detail"]


@pytest.mark.e2e
@pytest.mark.integration
async def test_an_oversized_grpc_request_is_refused_and_tasks_keeps_serving(stack: Stack) -> None:
    metadata = [("authorization", f"Bearer {stack.token}")]
    huge = tasks_pb2.CreateTaskRequest(
        user_id=NOBODY, natural_language="a" * (MAX_MESSAGE_BYTES + 1024)
    )
    async with grpc.aio.insecure_channel(stack.tasks_addr) as channel:
        tasks = tasks_pb2_grpc.TasksServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tasks.CreateTask(huge, metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        capped = await tasks.ListTasks(
            tasks_pb2.ListTasksRequest(user_id=NOBODY, take=1), metadata=metadata, timeout=10
        )
        assert capped.total_count == 0
    with stack.http(stack.api_key) as http:
        assert http.get("/api/v1/usage").status_code == 200


async def test_a_client_hanging_up_is_not_logged_as_a_server_error(
    gateway: RunningGateway, fake: FakeTasks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    headers = {"Authorization": f"Bearer {ALICE_KEY}", "Prefer": "wait=30"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=60) as hasty:
        call = asyncio.ensure_future(hasty.post(TASKS, json={"naturalLanguage": "Pay rent"}))
        await asyncio.wait_for(fake.watching.wait(), 20)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call

    def answered() -> bool:
        return any(
            r.name == "gateway.access" and getattr(r, "route", None) == TASKS
            for r in caplog.records
        )

    deadline = asyncio.get_running_loop().time() + 20
    while not answered():
        assert asyncio.get_running_loop().time() < deadline, "the gateway never finished"
        await asyncio.sleep(0.02)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
