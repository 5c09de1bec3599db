"""``/openapi.json`` and ``/docs``: the document, and Swagger UI rendering it.

Swagger UI's assets come from the ``swagger-ui-py`` package (its ``static``
folder), served here under ``/docs/static/``: the page works offline and
without any CDN. Only the few files the page loads are served."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import swagger_ui
from sanic import HTTPResponse, Request

from gateway.openapi import document
from gateway.responses import JSON
from gateway.routing import ROUTES, Reply, route
from taskmesh import errors

#: Swagger UI 5 (OpenAPI 3.1 support) as shipped by swagger-ui-py.
ASSET_DIR = Path(swagger_ui.__file__).parent / "static"
#: Assets never change within a release of the package: let browsers keep them.
ASSET_CACHE = "public, max-age=86400"
#: The Swagger UI files ``/docs`` loads (from the swagger-ui-py package), by media type.
DOCS_ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 1,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""


@cache
def _document() -> dict[str, Any]:
    # Built on first request: every route module has declared its routes by then.
    return document(ROUTES.operations)


@cache
def _document_json() -> bytes:
    return json.dumps(_document(), ensure_ascii=False, indent=2).encode()


@cache
def _docs_html() -> bytes:
    return _PAGE.format(title=_document()["info"]["title"]).encode()


@cache
def _asset(name: str) -> bytes:
    return (ASSET_DIR / name).read_bytes()


@route(
    "get",
    "/openapi.json",
    "openapi",
    "This document.",
    "documentation",
    {200: Reply("OpenAPI 3.1.")},
    authenticated=False,
)
async def openapi_json(request: Request) -> HTTPResponse:
    return HTTPResponse(_document_json(), content_type=JSON)


@route(
    "get",
    "/docs",
    "docs",
    "Swagger UI for this document: every operation, its body, and Try it out.",
    "documentation",
    {200: Reply("HTML.", content_type="text/html")},
    authenticated=False,
)
async def docs(request: Request) -> HTTPResponse:
    return HTTPResponse(_docs_html(), content_type="text/html; charset=utf-8")


@route(
    "get",
    "/docs/static/{name}",
    "docsAsset",
    "A file of the Swagger UI page (served from the swagger-ui-py package; works offline).",
    "documentation",
    {
        200: Reply(
            "The file.",
            content_type="text/css",
            other_content_types=("text/javascript", "image/png"),
        )
    },
    authenticated=False,
    path_schemas={"name": {"type": "string", "enum": list(DOCS_ASSETS)}},
    problems=(404,),
)
async def docs_asset(request: Request, name: str) -> HTTPResponse:
    content_type = DOCS_ASSETS.get(name)
    if content_type is None:
        raise errors.NotFound("No such file.")
    return HTTPResponse(
        _asset(name), content_type=content_type, headers={"Cache-Control": ASSET_CACHE}
    )
