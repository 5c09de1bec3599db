"""Routes that carry their documentation: each handler is declared with
``@route(...)``, which records its OpenAPI operation beside it; the Sanic app
serves exactly the declared routes (``ROUTES.add_to``) and ``gateway.openapi``
writes the document from the same declarations, so a route cannot be served
without being documented, nor documented without being served."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.alias_generators import to_snake
from sanic import Sanic

from gateway import sse

Handler = TypeVar("Handler", bound=Callable[..., Any])

#: ``{name}`` path parameters, as OpenAPI writes them.
_PARAM = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")


@dataclass(frozen=True)
class Reply:
    """One documented answer: its description, body model and headers (names
    of ``gateway.openapi``'s response headers)."""

    description: str
    model: type[BaseModel] | None = None
    #: None for a reply without a body.
    content_type: str | None = "application/json"
    headers: tuple[str, ...] = ()
    #: Further media types the same reply may have (a string body each).
    other_content_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One HTTP operation as the OpenAPI document states it. ``path`` is the
    OpenAPI path (``/api/v1/jobs/{jobId}``); ``problems`` lists the statuses of
    its problem documents beyond 500 (and 400/401/429/503 when authenticated)."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    replies: dict[int, Reply]
    authenticated: bool = True
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    #: Schemas of path parameters that are not resource ids (uuid by default).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_headers: tuple[str, ...] = ()
    problems: tuple[int, ...] = ()

    @property
    def path_params(self) -> tuple[str, ...]:
        """The path's parameter names, in order (``("jobId",)``)."""
        return tuple(_PARAM.findall(self.path))

    @property
    def sanic_uri(self) -> str:
        """The path as Sanic routes it: ``{jobId}`` becomes ``<job_id:str>``, the
        handler's argument (and the route label of the HTTP metrics)."""
        return _PARAM.sub(lambda m: f"<{to_snake(m.group(1))}:str>", self.path)


@dataclass(frozen=True)
class Route:
    """A handler and the operation it serves."""

    handler: Callable[..., Any]
    operation: Operation


class RouteTable:
    """The declared routes, in declaration order."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        tag: str,
        replies: dict[int, Reply],
        **options: Any,
    ) -> Callable[[Handler], Handler]:
        """Declares the decorated handler as ``method path`` with its
        documentation (the fields of ``Operation``). Raises ValueError for a
        method and path declared twice."""
        operation = Operation(method.lower(), path, operation_id, summary, tag, replies, **options)
        if any(
            (r.operation.method, r.operation.path) == (operation.method, path) for r in self._routes
        ):
            raise ValueError(f"{method.upper()} {path} is declared twice")

        def declare(handler: Handler) -> Handler:
            self._routes.append(Route(handler, operation))
            return handler

        return declare

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every declared operation, in declaration order (the document's order)."""
        return tuple(r.operation for r in self._routes)

    def add_to(self, app: Sanic[Any, Any]) -> None:
        """Serves every declared route on ``app``; a GET route answers HEAD too (RFC 9110
        §9.3.2: the same status and headers, no content), except an event stream, which
        has no end to measure."""
        for r in self._routes:
            op = r.operation
            methods = [op.method.upper()]
            if methods == ["GET"] and not _streams(op):
                methods.append("HEAD")
            app.add_route(r.handler, op.sanic_uri, methods=methods, name=r.handler.__name__)


def _streams(op: Operation) -> bool:
    return any(reply.content_type == sse.CONTENT_TYPE for reply in op.replies.values())


#: The gateway's routes; ``gateway.routes`` imports every module declaring one.
ROUTES = RouteTable()
route = ROUTES.route
