"""Every error is a problem document with the right status and no internals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway import RunningGateway
from taskmesh import errors
from tests.gateway.fakes import ALICE_KEY, FakeTasks
from tests.support.gateway import GatewayFactory, assert_problem
from tests.support.machine import unused_addr

CREATE = {"naturalLanguage": "Pay rent tomorrow"}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ke\ty",
        "Basic a2V5OnNlY3JldA==",
        "Bearer two words",
        "key-alice-0001",
    ],
)
async def test_missing_or_malformed_authorization_is_401_without_a_lookup(
    anon: httpx.AsyncClient, fake: FakeTasks, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await anon.get("/api/v1/usage", headers=headers)

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert fake.calls["Authenticate"] == 0


async def test_unknown_key_is_401(anon: httpx.AsyncClient, fake: FakeTasks) -> None:
    response = await anon.post(
        "/api/v1/tasks", json=CREATE, headers={"Authorization": "Bearer not-a-real-key-at-all"}
    )
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert fake.calls["Authenticate"] == 1
    assert fake.calls["CreateTask"] == 0


async def test_unknown_route_is_a_404_problem(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/api/v1/nothing-here")
    assert_problem(response, 404, "not-found")


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/tasks")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize("path", ["/api/v1/jobs/not-a-uuid", "/api/v1/tasks/1%27%20OR%201=1"])
async def test_malformed_ids_are_404(client: httpx.AsyncClient, fake: FakeTasks, path: str) -> None:
    response = await client.get(path)
    assert_problem(response, 404, "not-found")
    assert fake.calls["GetJob"] == fake.calls["GetTask"] == 0


@pytest.mark.parametrize(
    ("rpc", "error", "status", "slug", "retry_after"),
    [
        (
            "Authenticate",
            errors.ResourceExhausted("Slow down.", 2.2, errors.RATE_LIMITED),
            429,
            "rate-limited",
            "3",
        ),
        (
            "CreateTask",
            errors.ResourceExhausted("Budget spent.", 3600, errors.TOKEN_BUDGET_EXHAUSTED),
            429,
            "token-budget-exhausted",
            "3600",
        ),
        (
            "CreateTask",
            errors.Unavailable("broker down", retry_after_s=4),
            503,
            "unavailable",
            "4",
        ),
    ],
    ids=["request-rate", "token-budget", "dependency-down"],
)
async def test_limits_and_outages_carry_retry_after(
    client: httpx.AsyncClient,
    fake: FakeTasks,
    rpc: str,
    error: Exception,
    status: int,
    slug: str,
    retry_after: str,
) -> None:
    # The two 429s are told apart by type: the request rate (slow down) and the token
    # budget (nothing more until the window ends).
    fake.failures[rpc] = error
    response = await client.post("/api/v1/tasks", json=CREATE)
    body = assert_problem(response, status, slug)
    assert response.headers["retry-after"] == retry_after
    assert "broker" not in body["detail"]


async def test_tasks_service_down_is_503(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(tasks_grpc_addr=unused_addr())
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(
            "/api/v1/usage", headers={"Authorization": "Bearer abc12345-any-user-key"}
        )
    assert_problem(response, 503, "unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert "127.0.0.1" not in response.text


async def test_downstream_field_violations_name_the_json_field(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.failures["CreateTask"] = errors.InvalidInput(
        "Input failed validation.",
        [errors.FieldViolation("natural_language", "is too long for this capability")],
    )
    response = await client.post("/api/v1/tasks", json=CREATE)
    body = assert_problem(response, 400, "validation")
    assert body["errors"] == [
        {"field": "naturalLanguage", "message": "is too long for this capability"}
    ]


async def test_prompt_injection_says_only_invalid_input(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.failures["CreateTask"] = errors.InjectionDetected()
    response = await client.post("/api/v1/tasks", json=CREATE)
    body = assert_problem(response, 400, "invalid-input")
    assert body["detail"] == "Invalid input provided."
    assert "errors" not in body


SECRET = "psycopg OperationalError at 127.0.0.1:5432 Traceback (most recent call last)"


def assert_generic_500(response: httpx.Response) -> None:
    body = assert_problem(response, 500, "internal")
    for leak in ("psycopg", "OperationalError", "127.0.0.1", "Traceback", "RuntimeError"):
        assert leak not in response.text
    assert body["requestId"] in body["detail"] or "request id" in body["detail"]


async def test_unexpected_downstream_error_is_a_generic_500(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.failures["CreateTask"] = RuntimeError(SECRET)
    assert_generic_500(await client.post("/api/v1/tasks", json=CREATE))


async def test_unexpected_gateway_error_is_a_generic_500(
    client: httpx.AsyncClient, gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(gateway.app.ctx.tasks, "get_usage", explode)
    assert_generic_500(await client.get("/api/v1/usage"))


async def test_refused_internal_token_is_500_not_401(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(internal_auth_token="not-the-token")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(
            "/api/v1/usage", headers={"Authorization": "Bearer abc12345-any-user-key"}
        )
    assert_generic_500(response)


async def test_valid_request_id_is_echoed_and_forwarded(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    response = await client.get("/api/v1/usage", headers={"X-Request-Id": "client-req-0001"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "client-req-0001"
    assert fake.request_ids and set(fake.request_ids) == {"client-req-0001"}


@pytest.mark.parametrize("supplied", ["short", "has spaces in it", "x" * 129, "semi;colon-id"])
async def test_invalid_request_id_is_replaced(
    client: httpx.AsyncClient, fake: FakeTasks, supplied: str
) -> None:
    response = await client.get("/api/v1/usage", headers={"X-Request-Id": supplied})
    assigned = response.headers["x-request-id"]
    assert assigned != supplied
    assert len(assigned) == 36
    assert fake.request_ids and set(fake.request_ids) == {assigned}


async def test_errors_carry_a_request_id_too(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/nope", headers={"X-Request-Id": "client-req-0002"})
    body = assert_problem(response, 404)
    assert body["requestId"] == "client-req-0002"


@pytest.mark.parametrize("path", ["/api/v1/usage", "/api/v1/tasks", "/healthz", "/openapi.json"])
async def test_head_answers_as_get_without_a_body(client: httpx.AsyncClient, path: str) -> None:
    # RFC 9110 §9.3.2: HEAD is GET without the content; every GET resource answers it.
    got = await client.get(path)
    head = await client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_head_on_an_event_stream_is_405(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/v1/jobs/00000000-0000-4000-8000-000000000000/events")
    assert response.status_code == 405
    assert response.content == b""


async def test_head_without_a_key_is_401_without_a_body(anon: httpx.AsyncClient) -> None:
    response = await anon.head("/api/v1/usage")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.content == b""


async def _raw_problem(gateway: RunningGateway, sent: bytes, status: int) -> dict:
    """Sends ``sent`` as is, reads until the gateway closes the connection, and returns the
    problem document of its answer, checked to carry ``status``."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(sent)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"application/problem+json" in head.lower(), head
    problem = json.loads(body)
    assert problem["status"] == status
    return problem


@pytest.mark.parametrize(
    "sent",
    [
        # The head itself never ends.
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\n",
        # The head is complete; the body announced by Content-Length stops short.
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ALICE_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        + b'{"naturalLanguage": ',
        # A chunked body that never sends its last chunk.
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ALICE_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b'5\r\n{"nat\r\n',
    ],
    ids=["head", "content-length-body", "chunked-body"],
)
async def test_a_request_the_client_stops_sending_is_408(
    gateway: RunningGateway, client: httpx.AsyncClient, fake: FakeTasks, sent: bytes
) -> None:
    # The client's own delay (RFC 9110 §15.5.9), not "service unavailable, retry": the
    # answer comes once REQUEST_TIMEOUT passes without a byte, long before RESPONSE_TIMEOUT.
    gateway.app.config.REQUEST_TIMEOUT = 0.5
    assert gateway.app.config.RESPONSE_TIMEOUT >= 30
    problem = await _raw_problem(gateway, sent, 408)
    assert problem["type"] == "https://taskmesh.dev/problems/request-timeout"
    assert fake.calls["CreateTask"] == 0
    # The gateway keeps serving.
    assert (await client.get("/api/v1/usage")).status_code == 200


#: How often the trickling client below sends a byte: far more often than REQUEST_TIMEOUT,
#: so the per-byte (stalled request) timeout never fires.
TRICKLE_S = 0.05
#: REQUEST_TIMEOUT in the slow-request tests (seconds).
REQUEST_BOUND_S = 1.0


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """Sends ``data`` one byte at a time, ``every_s`` apart: a slow client's pacing (the
    behaviour under test), until it is all sent or the gateway closes the connection."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)
    except ConnectionError:
        return


@asynccontextmanager
async def _trickling(
    gateway: RunningGateway, sent: bytes, trickled: bytes
) -> AsyncIterator[tuple[asyncio.StreamReader, float]]:
    """A connection that sends ``sent`` at once, then ``trickled`` a byte every TRICKLE_S
    (`_trickle`): yields its reader and the time of its first byte; stops the sender and
    closes the connection on exit."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        first_byte = time.monotonic()
        writer.write(sent)
        sender = asyncio.create_task(_trickle(writer, trickled, TRICKLE_S))
        try:
            yield reader, first_byte
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer with a Content-Length body: its head and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


@pytest.mark.parametrize(
    ("sent", "trickled"),
    [
        # The head arrives a byte at a time and is never complete in time.
        (b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a" * 2000),
        # The head is complete; the announced body arrives a byte at a time.
        (
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + ALICE_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n",
            b" " * 2000,
        ),
    ],
    ids=["head", "body"],
)
async def test_a_request_trickling_in_is_408_once_the_whole_request_is_overdue(
    gateway: RunningGateway,
    client: httpx.AsyncClient,
    fake: FakeTasks,
    sent: bytes,
    trickled: bytes,
) -> None:
    # Sanic restarts REQUEST_TIMEOUT's clock on every byte: a byte every TRICKLE_S would keep
    # the connection (and, for a body, a handler) forever. The whole request gets
    # REQUEST_TIMEOUT from its first byte.
    gateway.app.config.REQUEST_TIMEOUT = REQUEST_BOUND_S
    async with _trickling(gateway, sent, trickled) as (reader, first_byte):
        answer = await asyncio.wait_for(reader.read(), 5 * REQUEST_BOUND_S)
        answered_after = time.monotonic() - first_byte
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert b"application/problem+json" in head.lower(), head
    problem = json.loads(body)
    assert problem["status"] == 408
    assert problem["type"] == "https://taskmesh.dev/problems/request-timeout"
    assert answered_after >= REQUEST_BOUND_S
    assert fake.calls["CreateTask"] == 0
    # The gateway keeps serving.
    assert (await client.get("/api/v1/usage")).status_code == 200


async def test_a_body_still_trickling_after_an_early_answer_is_cut_off(
    gateway: RunningGateway,
) -> None:
    # An unknown route is answered 404 from the head alone; Sanic then reads the body to its
    # end to keep the connection. That reading is bounded from the first byte too.
    gateway.app.config.REQUEST_TIMEOUT = REQUEST_BOUND_S
    sent = b"POST /api/v1/nothing-here HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
    async with _trickling(gateway, sent, b" " * 2000) as (reader, first_byte):
        head, _ = await asyncio.wait_for(_read_answer(reader), 5 * REQUEST_BOUND_S)
        rest = await asyncio.wait_for(reader.read(), 5 * REQUEST_BOUND_S)
        closed_after = time.monotonic() - first_byte
    assert head.startswith(b"HTTP/1.1 404 "), head
    assert rest == b""
    assert closed_after >= REQUEST_BOUND_S


async def test_the_request_bound_starts_at_each_requests_first_byte(
    gateway: RunningGateway,
) -> None:
    # Two requests on one keep-alive connection, each arriving over about 0.6 of the bound:
    # together they take longer than the bound, and neither is refused. A longer bound than
    # the other tests': 0.4 of it is the slack a busy machine's late wake-ups may eat.
    bound_s = 3 * REQUEST_BOUND_S
    gateway.app.config.REQUEST_TIMEOUT = bound_s
    request = (
        b"GET /api/v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ALICE_KEY.encode()
        + b"\r\n\r\n"
    )
    chunks = [
        request[i : i + len(request) // 5 + 1]
        for i in range(0, len(request), len(request) // 5 + 1)
    ]
    every_s = 0.6 * bound_s / len(chunks)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        opened = time.monotonic()
        for _ in range(2):
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(every_s)  # the client's pacing, as in _trickle
            head, body = await asyncio.wait_for(_read_answer(reader), 5 * bound_s)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert json.loads(body)["limit"] > 0
        assert time.monotonic() - opened > bound_s
    finally:
        writer.close()


async def test_an_expectation_other_than_100_continue_is_a_417_problem(
    gateway: RunningGateway, fake: FakeTasks
) -> None:
    sent = (
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + ALICE_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nExpect: 200-ok\r\n"
        + b"Content-Length: 2\r\n\r\n{}"
    )
    problem = await _raw_problem(gateway, sent, 417)
    assert problem["type"] == "https://taskmesh.dev/problems/expectation-failed"
    assert fake.calls["CreateTask"] == 0
