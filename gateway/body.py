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

#: Each pydantic error type a request model can raise, in the API's own words (pydantic's
#: "Input should be greater than or equal to 1" is the library's): a template over the
#: error's context. A ValueError raised by a model's validator is already worded for the
#: client and keeps its message; any other type reads as ``_UNKNOWN``.
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "list_type": "must be a list",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be greater than {gt}",
    "less_than": "must be less than {lt}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} characters",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "string_pattern_mismatch": "is not in the documented format",
}
_UNKNOWN = "is not a valid value"
_OWN = frozenset({"value_error", "assertion_error"})


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


#: U+FEFF at the start of a text: a byte order mark, not part of the JSON (RFC 8259 §8.1).
BOM = "\ufeff"

#: Whitespace as the JSON grammar has it (RFC 8259 §2).
_JSON_SPACE = " \t\r\n"

#: What went wrong, in the project's words, by the start of the parser's message. The
#: parser's own message never reaches a client: its wording ("Expecting ',' delimiter: line 1
#: column 31 (char 30)") is Python's, not the API's, and changes between versions.
_SYNTAX = (
    ("Expecting value", "a value is missing or is not a JSON value"),
    ("Unterminated string", "a string is not closed"),
    ("Invalid control character", "a string holds an unescaped control character"),
    ("Invalid \\", "a string holds an invalid escape"),
    ("Extra data", "something follows the JSON value"),
    ("Expecting property name", "an object member's name is not a double-quoted string"),
    ("Expecting ':'", "an object member's name is not followed by a colon"),
    ("Expecting ','", "an object or array is not closed, or lacks a comma"),
)


def _syntax_detail(exc: json.JSONDecodeError) -> str:
    """``The request body is not valid JSON: <what> (at line L, character C).``"""
    what = next((words for start, words in _SYNTAX if exc.msg.startswith(start)), None)
    where = f"line {exc.lineno}, character {exc.colno}"
    if what is None:
        return f"The request body is not valid JSON (at {where})."
    return f"The request body is not valid JSON: {what} (at {where})."


def _is_json(content_type: str) -> bool:
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


def _content_codings(request: Request) -> list[str]:
    """The codings of every Content-Encoding field line, lower case, ``identity`` left out."""
    return [
        coding
        for line in request.headers.getall("Content-Encoding", [])
        for coding in (part.strip().lower() for part in line.split(","))
        if coding and coding != "identity"
    ]


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object: UTF-8 (a leading byte order mark ignored), strict JSON
    (no NaN), an object at the top. Every refusal's detail is the gateway's own wording.

    A body sent with a content coding (gzip, br, …) is a 415 that says so, with
    ``Accept-Encoding: identity`` (RFC 9110 §15.5.16, §12.5.3): the gateway reads bodies
    as sent, and a compressed one would otherwise read as text that is not UTF-8. Two
    Content-Type field lines are a 400: the field takes one value (RFC 9110 §8.3), and which
    of the two a proxy acted on cannot be known."""
    codings = _content_codings(request)
    if codings:
        # Only a short token is echoed: the header may hold anything, undecodable bytes too.
        named = ", ".join(codings)
        if not (named.isascii() and named.isprintable() and len(named) <= 40):
            named = "other than identity"
        raise ProblemError(
            UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {named} is not supported; send it uncompressed.",
            headers={"Accept-Encoding": "identity"},
        )
    content_types = request.headers.getall("Content-Type", [])
    if len(content_types) > 1:
        raise ProblemError(MALFORMED, "The request has more than one Content-Type header.")
    if not _is_json(content_types[0] if content_types else ""):
        raise ProblemError(
            UNSUPPORTED_MEDIA_TYPE, "Send the body as JSON with Content-Type: application/json."
        )
    raw = request.body or b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProblemError(MALFORMED, "The request body is not valid UTF-8.") from None
    # RFC 8259 §8.1: a parser may ignore a leading byte order mark, and clients that
    # write UTF-8 "with signature" (.NET, Notepad) send one; the JSON after it is judged.
    text = text.removeprefix(BOM)
    if not text.strip(_JSON_SPACE):
        raise ProblemError(MALFORMED, "The request body is empty; expected a JSON object.")
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(MALFORMED, _syntax_detail(exc)) from None
    except _NotJson as exc:
        raise ProblemError(MALFORMED, f"The request body is not valid JSON: {exc}.") from None
    except ValueError:
        raise ProblemError(MALFORMED, "The request body is not valid JSON.") from None
    except RecursionError:
        raise ProblemError(MALFORMED, "The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise ProblemError(MALFORMED, "The request body must be a JSON object.")
    return data


#: Characters of a client's field or parameter name shown back to it: a name is the client's own
#: text, and a 60 KiB key must not come back twice (detail and ``errors``) in the answer.
MAX_NAME_CHARS = 64
#: Field errors listed at most in one answer; the detail counts the rest.
MAX_FIELD_ERRORS = 20


def shown_name(name: str) -> str:
    """``name`` as an answer names it: cut to MAX_NAME_CHARS, an ellipsis marking a cut."""
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _field_error(error: ErrorDetails) -> FieldError:
    field = shown_name(".".join(str(part) for part in error["loc"])) or "body"
    kind = error["type"]
    if kind in _OWN:
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        try:
            message = _MESSAGES[kind].format_map(error.get("ctx") or {})
        except (KeyError, ValueError):
            message = _UNKNOWN
    return FieldError(field=field, message=message)


def field_problem(errors: Sequence[FieldError], what: str) -> ProblemError:
    """The 400 validation problem naming each field of ``errors`` (``what``: "request
    body", "query"…), the first MAX_FIELD_ERRORS of them, the detail counting the rest."""
    listed = list(errors[:MAX_FIELD_ERRORS])
    detail = field_detail(listed, what)
    if len(errors) > len(listed):
        detail = f"{detail[:-1]}; and {len(errors) - len(listed)} more."
    return ProblemError(VALIDATION, detail, field_errors=listed)


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
            repeated.append(FieldError(field=shown_name(key), message="must be given at most once"))
        values[key] = items[0]
    if repeated:
        raise field_problem(repeated, "query parameters")
    return validate(model, values, "query parameters")
