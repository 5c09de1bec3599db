"""The OpenAI-compatible client every process that runs a capability uses, and the call options
(output bounds, structured-output mode) that travel with it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import openai

from taskmesh.settings import LlmSettings

ResponseFormatMode = Literal["auto", "json_schema", "json_object", "none"]

#: Default output bounds (tokens). The longest valid core answer (8-word title, one-sentence
#: reason, or a vague verdict with 3 suggestions) is ~150 tokens and a 7-step subtasks answer
#: ~120 with a small model's tokenizer; the bounds leave headroom without letting a rambling
#: model run on (issue 14.2: an unbounded call ran 2,472 tokens into the timeout).
DEFAULT_MAX_TOKENS_CORE = 400
DEFAULT_MAX_TOKENS_SUBTASKS = 300


@dataclass(frozen=True)
class CallOptions:
    """How calls to one endpoint are made.

    ``max_tokens_core`` / ``max_tokens_subtasks``: the ``max_tokens`` sent on each call of
    that kind (the name every OpenAI-compatible server accepts). ``response_format``: ``auto``
    starts with ``json_schema`` and falls back to ``json_object`` (schema in the prompt) then
    to none when the endpoint refuses, remembering the result per endpoint; the other values
    pin one mode. From ``OPENAI_MAX_TOKENS_CORE``, ``OPENAI_MAX_TOKENS_SUBTASKS`` and
    ``OPENAI_RESPONSE_FORMAT`` (SPEC §4)."""

    max_tokens_core: int = DEFAULT_MAX_TOKENS_CORE
    max_tokens_subtasks: int = DEFAULT_MAX_TOKENS_SUBTASKS
    response_format: ResponseFormatMode = "auto"

    @classmethod
    def from_settings(cls, settings: LlmSettings) -> CallOptions:
        return cls(
            max_tokens_core=settings.openai_max_tokens_core,
            max_tokens_subtasks=settings.openai_max_tokens_subtasks,
            response_format=settings.openai_response_format,
        )


# Options ride with the client object so that callers which only pass the client around (the
# worker, the AI service) get the configured ones without a signature change.
_OPTIONS: weakref.WeakKeyDictionary[openai.AsyncOpenAI, CallOptions] = weakref.WeakKeyDictionary()


def configure(client: openai.AsyncOpenAI, options: CallOptions) -> openai.AsyncOpenAI:
    """Attaches ``options`` to ``client`` (returned for chaining)."""
    _OPTIONS[client] = options
    return client


def call_options(client: openai.AsyncOpenAI) -> CallOptions:
    """The options attached to ``client``, or the defaults."""
    return _OPTIONS.get(client) or CallOptions()


def make_llm_client(settings: LlmSettings) -> openai.AsyncOpenAI:
    """A client for ``OPENAI_BASE_URL`` with ``OPENAI_TIMEOUT_S`` per call, no SDK retries,
    and the call options of ``settings`` attached (see :func:`call_options`)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    client = openai.AsyncOpenAI(
        # Local servers (the simulator, vLLM, Ollama) need no key, but the SDK
        # insists on one.
        api_key=key or "no-key",
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_s,
        # aiohttp transport: about half the client CPU of the default httpx one
        # per call (the largest single cost of a job), same SDK behaviour.
        http_client=openai.DefaultAioHttpClient(timeout=settings.openai_timeout_s),
        # The queue owns retries (backoff through retry queues); SDK retries
        # would multiply attempts and hold a worker slot while sleeping.
        max_retries=0,
    )
    return configure(client, CallOptions.from_settings(settings))
