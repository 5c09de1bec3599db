"""``/api/v1/webhooks`` through the real gateway in front of the real Tasks
service (in-process gRPC, SQLite): what a client sees."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway import start
from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.users import UserService
from services.tasks.domain.webhooks import MAX_ENDPOINTS_PER_USER, WebhookPolicy, WebhookService
from services.tasks.storage.ratelimit import LocalTokenBucket
from services.tasks.storage.repository import Store
from services.tasks.transport.caller import caller_interceptor
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.rpc import server
from taskmesh.settings import Settings
from tests.support.gateway import assert_problem
from tests.tasks.conftest import FakeDispatcher
from tests.webhooks.test_urls import SPOOFING_URLS

TOKEN = "internal-test-token"
PUBLIC_URL = "https://93.184.215.14/hooks/taskmesh"


@pytest.fixture
async def api(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """HTTP clients for alice and bob."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await store.open()
    users = UserService(store, LocalTokenBucket(capacity=1000, refill_per_s=1000))
    _, alice_key = await users.create("alice")
    _, bob_key = await users.create("bob")
    jobs = JobService(store, FakeDispatcher(), JobPolicy(BudgetPolicy(86_400, 100_000, 2500), 900))
    servicer = TasksServicer(jobs, users, WebhookService(store, WebhookPolicy(False)))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0",
        TOKEN,
        [registrar(servicer)],
        [SERVICE_NAME],
        interceptors=[caller_interceptor(users)],
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gateway_host="127.0.0.1",
        gateway_port=0,
        tasks_grpc_addr=f"127.0.0.1:{port}",
        ai_grpc_addr=f"127.0.0.1:{port}",
        internal_auth_token=TOKEN,  # type: ignore[arg-type]
        shutdown_grace_s=5.0,
    )
    gateway = await start(settings)
    alice = httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {alice_key}"}, timeout=20
    )
    bob = httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=20
    )
    try:
        yield alice, bob
    finally:
        await alice.aclose()
        await bob.aclose()
        await gateway.close()
        await grpc_server.stop(None)
        await store.close()


async def test_a_registered_endpoint_shows_its_secret_once(api) -> None:
    alice, _ = api
    created = await alice.post("/api/v1/webhooks", json={"url": PUBLIC_URL})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"id", "url", "events", "secret", "createdAt"}
    assert body["url"] == PUBLIC_URL
    assert body["events"] == ["job.succeeded", "job.failed", "job.cancelled"]
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    assert created.headers["location"] == f"/api/v1/webhooks/{body['id']}"

    listed = await alice.get("/api/v1/webhooks")
    assert listed.status_code == 200
    assert listed.json() == {
        "webhooks": [
            {
                "id": body["id"],
                "url": PUBLIC_URL,
                "events": body["events"],
                "createdAt": body["createdAt"],
            }
        ]
    }
    assert body["secret"] not in listed.text


async def test_events_can_be_chosen(api) -> None:
    alice, _ = api
    created = await alice.post(
        "/api/v1/webhooks", json={"url": PUBLIC_URL, "events": ["job.cancelled", "job.failed"]}
    )
    assert created.status_code == 201
    assert created.json()["events"] == ["job.failed", "job.cancelled"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://10.2.3.4/hook",
        "http://172.20.0.1/hook",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fd00::1]/hook",
        "ftp://93.184.215.14/hook",
        "not a url",
    ],
)
async def test_private_and_non_http_urls_are_refused_with_the_field_named(api, url: str) -> None:
    alice, _ = api
    response = await alice.post("/api/v1/webhooks", json={"url": url})
    body = assert_problem(response, 400)
    assert [e["field"] for e in body["errors"]] == ["url"]
    assert (await alice.get("/api/v1/webhooks")).json() == {"webhooks": []}


@pytest.mark.parametrize("url", SPOOFING_URLS)
async def test_urls_that_display_as_something_else_are_refused_with_the_field_named(
    api, url: str
) -> None:
    """Hidden characters (bidi controls, zero-width and other format characters, separators,
    whitespace) and host labels mixing look-alike scripts: a clean problem naming the field,
    without the URL or its characters, and nothing registered."""
    alice, _ = api
    response = await alice.post("/api/v1/webhooks", json={"url": url})
    body = assert_problem(response, 400)
    assert [e["field"] for e in body["errors"]] == ["url"]
    assert response.text.isascii()
    assert "example" not in response.text and "ypal" not in response.text
    assert (await alice.get("/api/v1/webhooks")).json() == {"webhooks": []}


@pytest.mark.parametrize(
    "url",
    [
        f"{PUBLIC_URL}/with%20space?name=a%20b",
        # RFC 3986 §3.1: the scheme is case-insensitive.
        PUBLIC_URL.replace("https://", "HTTPS://").replace("http://", "Http://"),
        "https://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/hooks/taskmesh",
    ],
)
async def test_honest_urls_are_registered_and_listed_as_sent(api, url: str) -> None:
    alice, _ = api
    created = await alice.post("/api/v1/webhooks", json={"url": url})
    assert created.status_code == 201, created.text
    assert created.json()["url"] == url
    assert [w["url"] for w in (await alice.get("/api/v1/webhooks")).json()["webhooks"]] == [url]


async def test_a_name_that_does_not_resolve_yet_is_accepted(api) -> None:
    """Deliveries resolve and check it again before every attempt."""
    alice, _ = api
    created = await alice.post(
        "/api/v1/webhooks", json={"url": "https://hooks.does-not-exist.invalid/taskmesh"}
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"url": 5},
        {"url": PUBLIC_URL, "events": ["job.created"]},
        {"url": PUBLIC_URL, "events": []},
        {"url": PUBLIC_URL, "extra": True},
    ],
)
async def test_malformed_bodies_are_400(api, payload: dict) -> None:
    alice, _ = api
    assert_problem(await alice.post("/api/v1/webhooks", json=payload), 400)


@pytest.mark.parametrize("path", ["/api/v1/webhooks?take=1", "/api/v1/webhooks?skip=0&x="])
async def test_the_endpoint_list_refuses_query_parameters_it_does_not_take(api, path: str) -> None:
    # As the job and task lists do: a parameter the list ignored would look applied.
    alice, _ = api
    problem = assert_problem(await alice.get(path), 400)
    assert problem["errors"]


async def test_users_see_and_delete_only_their_own_endpoints(api) -> None:
    alice, bob = api
    mine = (await alice.post("/api/v1/webhooks", json={"url": PUBLIC_URL})).json()["id"]
    assert (await bob.get("/api/v1/webhooks")).json() == {"webhooks": []}
    assert_problem(await bob.delete(f"/api/v1/webhooks/{mine}"), 404)
    assert_problem(await alice.delete(f"/api/v1/webhooks/{uuid.uuid4()}"), 404)
    assert_problem(await alice.delete("/api/v1/webhooks/not-an-id"), 404)

    deleted = await alice.delete(f"/api/v1/webhooks/{mine}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await alice.get("/api/v1/webhooks")).json() == {"webhooks": []}
    assert_problem(await alice.delete(f"/api/v1/webhooks/{mine}"), 404)


async def test_the_number_of_endpoints_per_user_is_bounded(api) -> None:
    alice, bob = api
    for n in range(MAX_ENDPOINTS_PER_USER):
        created = await alice.post("/api/v1/webhooks", json={"url": f"{PUBLIC_URL}/{n}"})
        assert created.status_code == 201
    # Not a 400 naming the URL, which is fine: the collection is full (409), until one goes.
    refused = await alice.post("/api/v1/webhooks", json={"url": PUBLIC_URL})
    problem = assert_problem(refused, 409, "webhook-limit-reached")
    assert problem["title"] == "Webhook endpoint limit reached"
    assert f"At most {MAX_ENDPOINTS_PER_USER} webhook endpoints" in problem["detail"]
    assert "delete one" in problem["detail"]
    assert "errors" not in problem
    assert (await bob.post("/api/v1/webhooks", json={"url": PUBLIC_URL})).status_code == 201
    first = (await alice.get("/api/v1/webhooks")).json()["webhooks"][0]["id"]
    assert (await alice.delete(f"/api/v1/webhooks/{first}")).status_code == 204
    assert (await alice.post("/api/v1/webhooks", json={"url": PUBLIC_URL})).status_code == 201


async def test_webhook_routes_require_an_api_key(api) -> None:
    alice, _ = api
    async with httpx.AsyncClient(base_url=str(alice.base_url), timeout=20) as anon:
        assert_problem(await anon.get("/api/v1/webhooks"), 401)
        assert_problem(await anon.post("/api/v1/webhooks", json={"url": PUBLIC_URL}), 401)
