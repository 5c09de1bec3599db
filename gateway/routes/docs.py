"""``/openapi.json`` and ``/docs``: the document, and Swagger UI rendering it.

Swagger UI's assets come from the ``swagger-ui-py`` package (its ``static``
folder), served here under ``/docs/static/``: the page works offline and
without any CDN. Only the few files the page loads are served."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import swagger_ui
from sanic import HTTPResponse, Request

from gateway.openapi import DOCS_ASSETS, document
from gateway.responses import JSON
from gateway.state import GatewayApp
from taskmesh import errors

#: Swagger UI 5 (OpenAPI 3.1 support) as shipped by swagger-ui-py.
ASSET_DIR = Path(swagger_ui.__file__).parent / "static"
#: Assets never change within a release of the package: let browsers keep them.
ASSET_CACHE = "public, max-age=86400"

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
def _document_json() -> bytes:
    return json.dumps(document(), ensure_ascii=False, indent=2).encode()


@cache
def _docs_html() -> bytes:
    return _PAGE.format(title=document()["info"]["title"]).encode()


@cache
def _asset(name: str) -> bytes:
    return (ASSET_DIR / name).read_bytes()


async def openapi_json(request: Request) -> HTTPResponse:
    return HTTPResponse(_document_json(), content_type=JSON)


async def docs(request: Request) -> HTTPResponse:
    return HTTPResponse(_docs_html(), content_type="text/html; charset=utf-8")


async def docs_asset(request: Request, name: str) -> HTTPResponse:
    content_type = DOCS_ASSETS.get(name)
    if content_type is None:
        raise errors.NotFound("No such file.")
    return HTTPResponse(
        _asset(name), content_type=content_type, headers={"Cache-Control": ASSET_CACHE}
    )


def register(app: GatewayApp) -> None:
    app.add_route(openapi_json, "/openapi.json", methods=["GET"], name="openapi")
    app.add_route(docs, "/docs", methods=["GET"], name="docs")
    app.add_route(docs_asset, "/docs/static/<name:str>", methods=["GET"], name="docs_asset")
