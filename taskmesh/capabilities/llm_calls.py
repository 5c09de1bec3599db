"""One bounded, metered chat-completions call against any OpenAI-compatible endpoint.

What real servers do differently, and what this module does about it (issue 14):

- ``max_tokens`` is sent on every call, so a rambling model stops at a known bound;
  ``finish_reason: length`` is reported as a truncation (:class:`CallResult.truncated`).
- An endpoint that refuses ``response_format: json_schema`` (llama-cpp-python answers 500)
  is retried with ``json_object`` and the schema in the prompt, then with no
  ``response_format``; the working mode is remembered per endpoint and logged once.
- A model whose chat template has no system role gets the instructions in the user message.
- Usage: the reported one when present; else an estimate, marked. A call abandoned by a client
  timeout or a cancellation is charged its bound (prompt estimate + ``max_tokens``), marked,
  because the server (or a proxy in front of it) may go on generating that much.
- Errors are classified: 429/5xx/408/409/timeout/connection/unreadable -> transient, with the
  endpoint's ``Retry-After``; any other 4xx -> rejected, with its message sanitised.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from taskmesh import metrics

from .errors import UsageMeter, sanitise_detail
from .llm_client import CallOptions, ResponseFormatMode
from .llm_transport import Answer, ChatTransport

log = logging.getLogger(__name__)

#: Fallback order in ``auto`` mode.
FORMAT_ORDER: tuple[ResponseFormatMode, ...] = ("json_schema", "json_object", "none")
#: Heading before the user's sentence when the instructions share its message (models
#: without a system role).
MERGED_SENTENCE_HEADING = "## The sentence"
#: Tokens a chat template adds per message (role markers), on the high side.
MESSAGE_OVERHEAD_TOKENS = 8


# --- token estimates -------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """An upper-side token estimate for ``text``: ~3 ASCII characters per token (English runs
    ~4 with common tokenizers) and one token per other character (CJK, Thai and most
    non-Latin scripts take about one token per character or more byte-level pieces)."""
    # Counted in C (encode drops the non-ASCII characters): a per-character Python loop over
    # a prompt of several KB cost more client CPU per call than the HTTP exchange (issue 12).
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 3) + (len(text) - ascii_chars)


def estimate_prompt_tokens(messages: list[ChatCompletionMessageParam], extra: str = "") -> int:
    """Estimated input tokens of ``messages`` (plus ``extra`` text such as a schema)."""
    total = estimate_tokens(extra)
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(str(message.get("content") or ""))
    return total


def call_bound(
    messages: list[ChatCompletionMessageParam], schema: ResponseSchema, max_tokens: int
) -> int:
    """The most one call can cost, tokens: estimated prompt (schema included, since servers
    send it to the model or compile it into the prompt) + the output bound."""
    return estimate_prompt_tokens(messages) + schema.tokens + max_tokens


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions ``response_format`` that asks for JSON matching ``schema``
    in OpenAI's strict mode, under the schema name ``name`` (a-z, A-Z, 0-9, _ and -)."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


#: One encoder for every body: ``json.dumps`` with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: The string encoder ``_ENCODER`` uses (``ensure_ascii=False``).
_encode_string = json.encoder.encode_basestring


def encode_json(value: Any) -> str:
    """``value`` as compact JSON text: the SDK's separators, non-ASCII characters as they are
    (UTF-8 on the wire), NaN and infinities refused (``ValueError``), as in the request bodies
    the ``openai`` SDK sends."""
    return _ENCODER.encode(value)


#: Distinct system prompts whose JSON text is kept (see :func:`_encoded_instructions`).
INSTRUCTIONS_KEPT = 64


@functools.lru_cache(maxsize=INSTRUCTIONS_KEPT)
def _encoded_instructions(text: str) -> str:
    """The JSON string of a system prompt. Prompts are few and shared by many calls (the
    parse-task ones are rendered once per config and second), and escaping their 1-3 KB was
    most of a body's encoding time."""
    return _ENCODER.encode(text)


def _encoded_value(value: Any) -> str:
    """``value`` as :func:`encode_json` encodes it. Strings, ints and finite floats are written
    by the functions the encoder itself uses for them (``encode_basestring``, ``int.__repr__``,
    ``float.__repr__``): the encoder's generic path for a scalar builds a C encoder per value,
    and was most of a body's encoding time after the prompts were cached (issue 12)."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _ENCODER.encode(value)


def _encoded_message(message: Any) -> str:
    """One message as :func:`encode_json` encodes it; a system prompt's text from the cache."""
    if isinstance(message, dict) and list(message) == ["role", "content"]:
        role = message["role"]
        content = message["content"]
        if type(role) is str and type(content) is str:
            if role == "system":
                return '{"role":"system","content":' + _encoded_instructions(content) + "}"
            return '{"role":' + _encode_string(role) + ',"content":' + _encode_string(content) + "}"
    return _ENCODER.encode(message)


@dataclass(frozen=True, slots=True, eq=False)
class ResponseSchema:
    """A structured-output schema with everything a call derives from it computed once: the
    schema is the same for every call of a kind (and, for parse-task's core call, of a
    config), and encoding it was a sixth of the worker's request-building CPU, done about six
    times per job (issue 12). Build it with :meth:`of`; ``schema`` must not be mutated after.

    ``name``: the schema name sent with ``json_schema`` (a-z, A-Z, 0-9, _ and -). ``schema``:
    the JSON schema (a dict). ``tokens``: :func:`estimate_tokens` of its JSON text, the share a
    call's prompt estimate adds for it. ``instruction``: the text the system message gains when
    the endpoint takes no ``json_schema`` (the schema in the prompt). ``json_schema_format`` /
    ``json_object_format``: the ``response_format`` of each mode, as compact UTF-8 JSON."""

    name: str
    schema: dict[str, Any]
    tokens: int
    instruction: str
    json_schema_format: bytes
    json_object_format: bytes

    @classmethod
    def of(cls, name: str, schema: dict[str, Any]) -> ResponseSchema:
        """Prepares ``schema`` under ``name``. Raises ``ValueError`` for a schema JSON cannot
        carry (NaN, infinities)."""
        compact = encode_json(schema)
        return cls(
            name=name,
            schema=schema,
            # The estimate has always measured the default (spaced) encoding; kept, so the
            # bound reserved for a job does not change.
            tokens=estimate_tokens(json.dumps(schema)),
            instruction=(
                "\n\nYour reply must be one JSON object that validates against this JSON "
                "schema:\n" + compact
            ),
            json_schema_format=encode_json(json_schema_format(name, schema)).encode(),
            # ``schema`` is llama-cpp-python's extension (it compiles it to a grammar); other
            # servers ignore the key.
            json_object_format=encode_json({"type": "json_object", "schema": schema}).encode(),
        )

    def response_format(self, mode: ResponseFormatMode) -> dict[str, Any] | None:
        """The ``response_format`` of ``mode`` as a dict (None for ``none``): what an SDK call
        takes; the lean transport sends the encoded one (:func:`encode_request`)."""
        if mode == "json_schema":
            return json_schema_format(self.name, self.schema)
        if mode == "json_object":
            return {"type": "json_object", "schema": self.schema}
        return None

    def encoded_format(self, mode: ResponseFormatMode) -> bytes | None:
        """The ``response_format`` of ``mode`` as compact UTF-8 JSON (None for ``none``)."""
        if mode == "json_schema":
            return self.json_schema_format
        if mode == "json_object":
            return self.json_object_format
        return None


def encode_request(head: dict[str, Any], response_format: bytes | None) -> bytes:
    """A chat-completions request body: ``head`` (``model``, ``messages``, ``temperature``,
    ``max_tokens``; string keys) encoded by :func:`encode_json`, the system prompts' text taken
    from a cache, with ``response_format`` (already encoded, see :class:`ResponseSchema`)
    spliced in as the last member. The bytes equal the encoding of
    ``{**head, "response_format": <decoded>}``. Raises ``UnicodeEncodeError`` for text with
    a lone surrogate (no UTF-8 form) and ``ValueError`` for NaN or infinities, as encoding the
    whole body did."""
    members = []
    for key, value in head.items():
        if key == "messages" and isinstance(value, list):
            text = "[" + ",".join([_encoded_message(m) for m in value]) + "]"
        else:
            text = _encoded_value(value)
        members.append(_encoded_value(key) + ":" + text)
    data = ("{" + ",".join(members)).encode()
    if response_format is None:
        return data + b"}"
    if not head:
        return b'{"response_format":' + response_format + b"}"
    return data + b',"response_format":' + response_format + b"}"


# --- errors ------------------------------------------------------------------------------------


class CallFailed(Exception):
    """A call that produced no answer. ``outcome`` is a bounded metric label; ``transient`` says
    whether another attempt later may succeed; ``retry_after_s`` is the endpoint's wish;
    ``detail`` is the endpoint's sanitised message (for rejections)."""

    def __init__(
        self,
        message: str,
        outcome: str,
        transient: bool,
        *,
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.transient = transient
        self.retry_after_s = retry_after_s
        self.detail = detail


def retry_after_seconds(headers: Any, now: datetime | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP-date,
    RFC 9110 §10.2.3); None when absent or unreadable. Never negative, never raises."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            value = float(ms) / 1000
            if math.isfinite(value):
                return max(0.0, value)
        raw = headers.get("retry-after")
        if raw is None:
            return None
        raw = str(raw).strip()
        try:
            value = float(raw)
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            value = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, value) if math.isfinite(value) else None
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def endpoint_message(exc: openai.APIStatusError) -> str:
    """The endpoint's own words from an error response: ``error.message`` of the OpenAI
    shape, ``detail`` (FastAPI servers), or the body text."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    return error[key]
        if isinstance(error, str):
            return error
        if isinstance(body.get("detail"), str):
            return body["detail"]
    if isinstance(body, str):
        return body
    try:
        return exc.response.text
    except Exception:
        return exc.message


def classify(exc: openai.OpenAIError) -> CallFailed:
    """Maps an SDK error to a :class:`CallFailed` (issue 14.4, SPEC §7)."""
    if isinstance(exc, openai.APITimeoutError):
        return CallFailed("LLM call timed out", "timeout", transient=True)
    if isinstance(exc, openai.APIConnectionError):
        return CallFailed("LLM endpoint unreachable", "connection_error", transient=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = retry_after_seconds(exc.response.headers)
        detail = sanitise_detail(endpoint_message(exc))
        if status == 429:
            return CallFailed(
                "LLM endpoint rate limited the call",
                "rate_limited",
                True,
                retry_after_s=retry_after,
                detail=detail,
            )
        if status >= 500 or status in (408, 409):
            return CallFailed(
                f"LLM endpoint answered {status}",
                "server_error",
                True,
                retry_after_s=retry_after,
                detail=detail,
            )
        return CallFailed(
            f"LLM endpoint refused the request ({status}): {detail}",
            "rejected",
            transient=False,
            detail=detail or f"the LLM endpoint refused the request (HTTP {status})",
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return CallFailed("LLM endpoint sent an unreadable response", "bad_response", True)
    return CallFailed(f"LLM call failed: {type(exc).__name__}", "error", transient=True)


_FORMAT_REFUSAL = re.compile(
    r"response_format|json_schema|json schema|schema|grammar|structured output|strict",
    re.IGNORECASE,
)
_SYSTEM_REFUSAL = re.compile(
    r"system role|role[\s'\"]*system|system message|system prompt.*(not|un)supported|"
    r"roles must alternate|conversation roles must",
    re.IGNORECASE,
)


def _refuses(exc: openai.OpenAIError, pattern: re.Pattern[str]) -> bool:
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 422, 500, 501):
        return False
    try:
        return bool(pattern.search(endpoint_message(exc)))
    except Exception:
        return False


# --- per-endpoint memory -------------------------------------------------------------------------


@dataclass
class EndpointTraits:
    """What an endpoint was found to accept: the structured-output mode and the system role."""

    format_index: int = 0
    system_role: bool = True


_TRAITS: dict[str, EndpointTraits] = {}
_TRAITS_LOCK = threading.Lock()


#: (id of a client's base URL object, model) -> (that URL object, its endpoint key): rendering
#: the URL (httpx's ``URL.__str__``) cost ~6 µs per job, a caller being made per job. The URL
#: object is kept with its key, so its id cannot be reused while the entry lives. Bounded by
#: ENDPOINT_KEYS_KEPT (clients live as long as the process; tests make many).
_ENDPOINT_KEYS: dict[tuple[int, str], tuple[object, str]] = {}
ENDPOINT_KEYS_KEPT = 64


def endpoint_key(client: openai.AsyncOpenAI, model: str) -> str:
    """An endpoint is a base URL and a model: a proxy may route models to different servers.
    ``"<base URL>|<model>"`` (a client without a base URL: its id in place of it)."""
    base = getattr(client, "base_url", None)
    if base is None:
        return f"{id(client)}|{model}"
    known = _ENDPOINT_KEYS.get((id(base), model))
    if known is not None and known[0] is base:
        return known[1]
    key = f"{base}|{model}"
    if len(_ENDPOINT_KEYS) >= ENDPOINT_KEYS_KEPT:
        _ENDPOINT_KEYS.clear()
    _ENDPOINT_KEYS[(id(base), model)] = (base, key)
    return key


def traits(key: str) -> EndpointTraits:
    # Read without the lock once known (a dict lookup is atomic): asked twice per call, and
    # the lock was a visible share of a call's CPU; the first sight still takes it, so
    # threads agree on one object per endpoint.
    known = _TRAITS.get(key)
    if known is not None:
        return known
    with _TRAITS_LOCK:
        return _TRAITS.setdefault(key, EndpointTraits())


def forget_endpoints() -> None:
    """Drops what was learnt about endpoints (tests; an operator's restart does the same)."""
    with _TRAITS_LOCK:
        _TRAITS.clear()


# --- the call --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResult:
    """An answered call: ``content`` (may be None), ``truncated`` when the endpoint stopped at
    the output bound (``finish_reason: length``), ``usage_estimated`` when the endpoint reported
    no usage and an estimate was charged."""

    content: str | None
    truncated: bool
    usage_estimated: bool


def _merge_system(messages: list[ChatCompletionMessageParam]) -> list[ChatCompletionMessageParam]:
    """For templates without a system role: the instructions open the first user message."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m["role"] == "system")
    rest: list[ChatCompletionMessageParam] = [m for m in messages if m["role"] != "system"]
    if not system or not rest or rest[0]["role"] != "user":
        return rest
    first = rest[0]
    merged: ChatCompletionMessageParam = {
        "role": "user",
        "content": f"{system}\n\n{MERGED_SENTENCE_HEADING}\n\n{first.get('content') or ''}",
    }
    return [merged, *rest[1:]]


@dataclass
class LLMCaller:
    """Makes the calls of one capability run against one endpoint, recording each call's usage
    into ``meter`` as it ends. ``timeout`` (seconds) overrides the client's per-call one."""

    client: openai.AsyncOpenAI
    model: str
    options: CallOptions
    meter: UsageMeter
    timeout: float | None = None

    @functools.cached_property
    def _key(self) -> str:
        # Once per caller: rendering the client's base URL was a visible cost per call.
        return endpoint_key(self.client, self.model)

    def _mode(self) -> ResponseFormatMode:
        if self.options.response_format != "auto":
            return self.options.response_format
        return FORMAT_ORDER[min(traits(self._key).format_index, len(FORMAT_ORDER) - 1)]

    async def call(
        self,
        operation: str,
        messages: list[ChatCompletionMessageParam],
        schema: ResponseSchema,
        temperature: float,
        max_tokens: int,
    ) -> CallResult:
        """One answered call asking for JSON that matches ``schema``, falling back on format or system-role refusals (each refused
        request counts as a call of 0 tokens). Raises :class:`CallFailed`; re-raises
        cancellation after charging the call's bound."""
        while True:
            mode = self._mode()
            endpoint = traits(self._key)
            try:
                return await self._once(
                    operation,
                    messages,
                    schema,
                    temperature,
                    max_tokens,
                    mode,
                    endpoint.system_role,
                )
            except _Refused as refused:
                if refused.what == "format" and self.options.response_format == "auto":
                    if endpoint.format_index < len(FORMAT_ORDER) - 1:
                        endpoint.format_index = max(
                            endpoint.format_index, FORMAT_ORDER.index(mode) + 1
                        )
                        log.warning(
                            "LLM endpoint refused response_format %s; using %s from now on",
                            mode,
                            FORMAT_ORDER[endpoint.format_index],
                            extra={"model": self.model, "detail": refused.failure.detail},
                        )
                        continue
                if refused.what == "system" and endpoint.system_role:
                    endpoint.system_role = False
                    log.warning(
                        "LLM endpoint has no system role; instructions go in the user message",
                        extra={"model": self.model},
                    )
                    continue
                if refused.what == "format":
                    # The configured mode is refused, or every mode was: deterministic.
                    raise CallFailed(
                        f"LLM endpoint refused response_format {mode}",
                        "rejected",
                        transient=False,
                        detail=refused.failure.detail
                        or f"the LLM endpoint does not accept response_format {mode}",
                    ) from None
                raise refused.failure from None

    async def _once(
        self,
        operation: str,
        messages: list[ChatCompletionMessageParam],
        schema: ResponseSchema,
        temperature: float,
        max_tokens: int,
        mode: ResponseFormatMode,
        system_role: bool,
    ) -> CallResult:
        sent = messages
        if mode != "json_schema" and messages and messages[0]["role"] == "system":
            # Without json_schema the model only sees the schema if the prompt carries it.
            sent = [
                {
                    "role": "system",
                    "content": str(messages[0].get("content") or "") + schema.instruction,
                },
                *messages[1:],
            ]
        if not system_role:
            sent = _merge_system(sent)
        prompt_estimate = estimate_prompt_tokens(sent) + (
            schema.tokens if mode == "json_schema" else 0
        )
        head: dict[str, Any] = {
            "model": self.model,
            "messages": sent,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        started = time.perf_counter()
        try:
            answer = await self._post(head, schema, mode)
        except asyncio.CancelledError:
            self._charge_bound(operation, prompt_estimate, max_tokens, "abandoned")
            raise
        except openai.OpenAIError as exc:
            failure = classify(exc)
            if failure.outcome in ("timeout", "bad_response"):
                # The server may have generated up to the bound (or still be generating).
                self._charge_bound(operation, prompt_estimate, max_tokens, failure.outcome)
            else:
                self.meter.record(operation, 0, 0, estimated=False)
                metrics.labelled(metrics.llm_calls, operation, self.model, failure.outcome).inc()
            if mode != "none" and _refuses(exc, _FORMAT_REFUSAL):
                raise _Refused("format", failure) from exc
            if system_role and _refuses(exc, _SYSTEM_REFUSAL):
                raise _Refused("system", failure) from exc
            raise failure from exc
        finally:
            metrics.labelled(metrics.llm_latency, operation, self.model).observe(
                time.perf_counter() - started
            )

        content = answer.content
        truncated = answer.finish_reason == "length"
        if answer.prompt_tokens or answer.completion_tokens:
            prompt_tokens = answer.prompt_tokens or 0
            completion_tokens = answer.completion_tokens or 0
            estimated = False
        else:
            # Endpoints that omit usage still spent tokens: charge an estimate, marked.
            prompt_tokens = prompt_estimate
            completion_tokens = max_tokens if truncated else estimate_tokens(content or "")
            estimated = True
        self.meter.record(operation, prompt_tokens, completion_tokens, estimated=estimated)
        self._count_tokens(operation, prompt_tokens, completion_tokens)
        return CallResult(content=content, truncated=truncated, usage_estimated=estimated)

    async def _post(
        self, head: dict[str, Any], schema: ResponseSchema, mode: ResponseFormatMode
    ) -> Answer:
        """The call itself, with ``head`` (model, messages, temperature, max_tokens) and the
        ``response_format`` of ``mode``: through the client's lean transport when it has one
        (:class:`~.llm_client.LLMClient`; the body encoded by :func:`encode_request`), else
        through the SDK (any ``AsyncOpenAI``, or a double of its ``chat.completions.create``).
        Raises the SDK's errors either way."""
        transport = getattr(self.client, "transport", None)
        if isinstance(transport, ChatTransport):
            data = encode_request(head, schema.encoded_format(mode))
            return await transport.post(data, self.timeout)
        body = dict(head)
        response_format = schema.response_format(mode)
        if response_format is not None:
            body["response_format"] = response_format
        completion = await self.client.chat.completions.create(
            **body, timeout=openai.NOT_GIVEN if self.timeout is None else self.timeout
        )
        return Answer.from_completion(completion)

    def _charge_bound(self, operation: str, prompt: int, max_tokens: int, outcome: str) -> None:
        self.meter.record(operation, prompt, max_tokens, estimated=True)
        self._count_tokens(operation, prompt, max_tokens)
        metrics.labelled(metrics.llm_calls, operation, self.model, outcome).inc()
        log.warning(
            "LLM call %s; charged its bound as an estimate",
            outcome,
            extra={"operation": operation, "tokens": prompt + max_tokens},
        )

    def _count_tokens(self, operation: str, prompt: int, completion: int) -> None:
        metrics.labelled(metrics.llm_tokens, operation, self.model, "input").inc(prompt)
        metrics.labelled(metrics.llm_tokens, operation, self.model, "output").inc(completion)


class _Refused(Exception):
    def __init__(self, what: str, failure: CallFailed) -> None:
        super().__init__(what)
        self.what = what
        self.failure = failure
