"""Liveness, readiness, metrics and the API's own documentation."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sanic import HTTPResponse, Request, Sanic

import gateway.routes  # noqa: F401  # declares every route
from gateway import RunningGateway
from gateway.openapi import document
from gateway.routing import ROUTES, RouteTable
from taskmesh.rpc.server import set_serving
from tests.support.gateway import TASKS_SERVICE, Backend, assert_problem


async def test_healthz(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_follows_the_health_of_tasks_and_ai(
    anon: httpx.AsyncClient, backend: Backend
) -> None:
    assert (await anon.get("/readyz")).status_code == 200

    await set_serving(backend.ai_health, [], False)
    response = await anon.get("/readyz")
    body = assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"]
    assert body["checks"] == {"tasks": "ok", "ai": "down"}

    await set_serving(backend.ai_health, [], True)
    await set_serving(backend.tasks_health, [TASKS_SERVICE], False)
    assert_problem(await anon.get("/readyz"), 503)

    await set_serving(backend.tasks_health, [TASKS_SERVICE], True)
    assert (await anon.get("/readyz")).status_code == 200


async def test_metrics_count_requests_by_route_pattern(anon: httpx.AsyncClient) -> None:
    await anon.get("/healthz")
    await anon.get("/api/v1/jobs/6f1c1f7e-1c1a-4c1e-9a1e-0c1e1c1e1c1e")
    await anon.get("/no/such/path/12345")
    response = await anon.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "http_requests_total" in text
    assert re.search(r'http_requests_total\{method="GET",route="/healthz",status="200"\}', text)
    assert 'route="/api/v1/jobs/<job_id:str>"' in text
    assert 'route="unmatched"' in text
    assert "/no/such/path" not in text
    assert "http_request_duration_seconds_bucket" in text


def normalise(path: str) -> str:
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def undocumented_and_unserved(
    app: Sanic[Any, Any], doc: dict[str, Any]
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(served but not documented, documented but not served), as (METHOD, path)
    with path parameters blanked: Sanic's router against the OpenAPI document. A
    documented GET documents its HEAD (RFC 9110 §9.3.2)."""
    documented = {
        (method.upper(), normalise(path)) for path, ops in doc["paths"].items() for method in ops
    }
    served = {
        (method, normalise(route.uri)) for route in app.router.routes for method in route.methods
    }
    served -= {("HEAD", path) for method, path in documented if method == "GET"}
    return served - documented, documented - served


async def test_every_served_route_is_documented_and_every_documented_one_served(
    anon: httpx.AsyncClient, gateway: RunningGateway
) -> None:
    response = await anon.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert undocumented_and_unserved(gateway.app, doc) == (set(), set())


async def test_openapi_document_carries_the_models_and_problems(anon: httpx.AsyncClient) -> None:
    doc = (await anon.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert {"CreateTaskBody", "Job", "Task", "TaskList", "Usage", "Problem"} <= set(schemas)
    create = doc["paths"]["/api/v1/tasks"]["post"]
    assert {"202", "201", "400", "401", "413", "415", "422", "429", "503"} <= set(
        create["responses"]
    )
    assert "naturalLanguage" in schemas["CreateTaskBody"]["properties"]


async def test_openapi_document_lists_the_webhook_limits_409(anon: httpx.AsyncClient) -> None:
    doc = (await anon.get("/openapi.json")).json()
    create = doc["paths"]["/api/v1/webhooks"]["post"]["responses"]
    assert "webhook-limit-reached" in create["409"]["description"]
    assert "https://taskmesh.dev/problems/webhook-limit-reached" in doc["info"]["description"]


async def test_docs_page_is_swagger_ui_served_from_here(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'url: "/openapi.json"' in page
    # Nothing from another host: the page works offline.
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert loaded and all(url.startswith("/docs/static/") for url in loaded)
    for url in loaded:
        asset = await anon.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    bundle = await anon.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content


def test_a_route_added_behind_the_declarations_is_caught() -> None:
    """The check above can fail: a route served without a declaration, and a
    declaration not served, are both reported."""
    app: Sanic[Any, Any] = Sanic(f"routes-check-{uuid.uuid4().hex[:12]}")
    ROUTES.add_to(app)
    doc = document(ROUTES.operations)
    assert undocumented_and_unserved(app, doc) == (set(), set())

    async def hidden(request: Request) -> HTTPResponse:
        return HTTPResponse(status=204)

    app.add_route(hidden, "/api/v1/hidden/<thing:str>", methods=["GET"], name="hidden")
    extra, missing = undocumented_and_unserved(app, doc)
    assert extra == {("GET", "/api/v1/hidden/{}")} and not missing

    bare: Sanic[Any, Any] = Sanic(f"routes-check-{uuid.uuid4().hex[:12]}")
    extra, missing = undocumented_and_unserved(bare, doc)
    assert not extra and ("GET", "/api/v1/jobs/{}") in missing


@pytest.mark.parametrize(
    "name", ["index.html", "..%2F..%2Fgateway%2Fapp.py", "swagger-ui.js.map", "%2E%2E"]
)
async def test_only_the_pages_own_assets_are_served(anon: httpx.AsyncClient, name: str) -> None:
    response = await anon.get(f"/docs/static/{name}")
    assert response.status_code == 404


def test_a_route_cannot_be_declared_twice() -> None:
    table = RouteTable()
    declare = table.route("get", "/api/v1/things/{thingId}", "getThing", "A thing.", "things", {})

    async def get_thing(request: Request, thing_id: str) -> HTTPResponse:
        return HTTPResponse(status=204)

    declare(get_thing)
    assert [op.sanic_uri for op in table.operations] == ["/api/v1/things/<thing_id:str>"]
    with pytest.raises(ValueError, match="declared twice"):
        table.route("GET", "/api/v1/things/{thingId}", "again", "Again.", "things", {})


async def test_no_response_carries_an_empty_alt_svc_header(
    client: httpx.AsyncClient, gateway: RunningGateway
) -> None:
    # Sanic's placeholder for its start-time rewrite (off here) went out on every response;
    # an empty Alt-Svc is no valid value (RFC 7838 §3) and no alternative service exists.
    responses = [
        await client.get("/healthz"),
        await client.get("/api/v1/usage"),
        await client.get("/api/v1/tasks", params={"take": "0"}),
        await client.get("/no/such/path"),
        await client.delete("/api/v1/usage"),
        await client.get("/openapi.json"),
    ]
    for response in responses:
        assert "alt-svc" not in response.headers, (response.request.url, response.status_code)

    # Protocol-level answers (no route ran: Sanic's own error path) are no exception.
    for raw in (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
        try:
            writer.write(raw)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 4"), head
        assert b"alt-svc" not in head.lower(), head
