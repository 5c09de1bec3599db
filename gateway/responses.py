"""JSON success responses from the response models."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from sanic import HTTPResponse

from gateway.schemas import dump

JSON = "application/json"
#: Seconds a client should wait before polling a job that is not finished.
POLL_AFTER = "1"


def json_model(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> HTTPResponse:
    return HTTPResponse(dump(model), status=status, headers=dict(headers or {}), content_type=JSON)
