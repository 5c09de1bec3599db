"""``/openapi.json`` and ``/docs``: the document, and a page that renders it
without fetching anything from the network."""

from __future__ import annotations

import html
import json
from functools import cache
from typing import Any

from sanic import HTTPResponse, Request

from gateway.openapi import document
from gateway.responses import JSON
from gateway.state import GatewayApp


@cache
def _document_json() -> bytes:
    return json.dumps(document(), ensure_ascii=False, indent=2).encode()


def _operation_html(method: str, path: str, op: dict[str, Any]) -> str:
    e = html.escape
    params = "".join(
        f"<li><code>{e(p['name'])}</code> ({e(p['in'])}) {e(p.get('description', ''))}</li>"
        for p in op.get("parameters", [])
    )
    replies = "".join(
        f"<li><code>{e(code)}</code> {e(reply['description'])}</li>"
        for code, reply in op["responses"].items()
    )
    lock = " 🔒" if op.get("security") else ""
    return (
        f'<section id="{e(op["operationId"])}"><h3><span class="m">{e(method.upper())}</span> '
        f"<code>{e(path)}</code>{lock}</h3><p>{e(op['summary'])}</p>"
        f"<h4>Parameters</h4><ul>{params}</ul><h4>Responses</h4><ul>{replies}</ul></section>"
    )


@cache
def _docs_html() -> bytes:
    doc = document()
    sections = "".join(
        _operation_html(method, path, op)
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
    )
    schemas = "".join(
        f"<details><summary><code>{html.escape(name)}</code></summary>"
        f"<pre>{html.escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre></details>"
        for name, schema in doc["components"]["schemas"].items()
    )
    title = html.escape(doc["info"]["title"])
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title} API</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "section{border-top:1px solid #ccc;padding:.5rem 0}.m{color:#06c;margin-right:.5rem}"
        "pre{background:#f5f5f5;padding:.5rem;overflow:auto}"
        "</style></head><body>"
        f"<h1>{title} API {html.escape(doc['info']['version'])}</h1>"
        f"<p>{html.escape(doc['info']['description'])}</p>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). '
        "🔒 routes need <code>Authorization: Bearer &lt;api key&gt;</code>.</p>"
        f"<h2>Operations</h2>{sections}<h2>Schemas</h2>{schemas}</body></html>"
    )
    return page.encode()


async def openapi_json(request: Request) -> HTTPResponse:
    return HTTPResponse(_document_json(), content_type=JSON)


async def docs(request: Request) -> HTTPResponse:
    return HTTPResponse(_docs_html(), content_type="text/html; charset=utf-8")


def register(app: GatewayApp) -> None:
    app.add_route(openapi_json, "/openapi.json", methods=["GET"], name="openapi")
    app.add_route(docs, "/docs", methods=["GET"], name="docs")
