"""Turns request bodies and query strings into validated models, or into a
400/415 problem that says exactly what is wrong (and which field)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sanic import Request

from gateway.problems import (
    MALFORMED,
    UNSUPPORTED_MEDIA_TYPE,
    VALIDATION,
    ProblemError,
    field_detail,
)
from gateway.schemas import FieldError

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
}


class _NotJson(ValueError):
    """A value the JSON grammar does not have, named for the client."""


#: Digits a JSON integer may have: no field takes more, and Python refuses to parse
#: over 4,300 anyway, with a message about its own internals.
MAX_INT_DIGITS = 100


def _reject_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not valid JSON")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _NotJson(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(digits)


#: One decoder for every request: ``json.loads`` with hooks builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_bounded_int)


def _is_json(content_type: str) -> bool:
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: UTF-8, strict JSON (no NaN), an object at the top."""
    if not _is_json(request.headers.get("Content-Type", "")):
        raise ProblemError(
            UNSUPPORTED_MEDIA_TYPE, "Send the body as JSON with Content-Type: application/json."
        )
    raw = request.body or b""
    if not raw.strip():
        raise ProblemError(MALFORMED, "The request body is empty; expected a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(MALFORMED, "The request body is not valid UTF-8.") from None
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(
            MALFORMED,
            f"The request body is not valid JSON: {exc.msg} (line {exc.lineno}, "
            f"column {exc.colno}).",
        ) from None
    except _NotJson as exc:
        raise ProblemError(MALFORMED, f"The request body is not valid JSON: {exc}.") from None
    except ValueError:
        raise ProblemError(MALFORMED, "The request body is not valid JSON.") from None
    except RecursionError:
        raise ProblemError(MALFORMED, "The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ProblemError(MALFORMED, "The request body must be a JSON object.")
    return data


def _field_error(error: ErrorDetails) -> FieldError:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
    return FieldError(field=field, message=message)


def field_problem(errors: Sequence[FieldError], what: str) -> ProblemError:
    """The 400 validation problem naming each field of ``errors`` (``what``: "request
    body", "query"…)."""
    return ProblemError(VALIDATION, field_detail(errors, what), field_errors=errors)


def validate(model: type[M], data: Mapping[str, Any], what: str = "request body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_problem([_field_error(e) for e in exc.errors()], what) from None


def query(request: Request, model: type[M]) -> M:
    values: dict[str, Any] = {}
    repeated: list[FieldError] = []
    # Blank values too (``?priorityLevel=``): they are values the model judges,
    # as the OpenAPI document says, not parameters silently dropped.
    for key, items in request.get_args(keep_blank_values=True).items():
        if len(items) > 1:
            repeated.append(FieldError(field=key, message="must be given at most once"))
        values[key] = items[0]
    if repeated:
        raise field_problem(repeated, "query parameters")
    return validate(model, values, "query parameters")
