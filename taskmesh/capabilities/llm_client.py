"""The OpenAI-compatible client every process that runs a capability uses, and the call options
(output bounds, structured-output mode) that travel with it."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal, TypeVar

import openai

from taskmesh.settings import LlmSettings

from .llm_transport import ChatTransport, request_headers

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


C = TypeVar("C", bound=openai.AsyncOpenAI)


def configure(client: C, options: CallOptions) -> C:
    """Attaches ``options`` to ``client`` (returned for chaining)."""
    _OPTIONS[client] = options
    return client


def call_options(client: openai.AsyncOpenAI) -> CallOptions:
    """The options attached to ``client``, or the defaults."""
    return _OPTIONS.get(client) or CallOptions()


class LLMClient(openai.AsyncOpenAI):
    """An SDK client that also carries a lean :class:`~.llm_transport.ChatTransport` for
    chat-completions calls (what :class:`~.llm_calls.LLMCaller` uses when present).

    It is an ``openai.AsyncOpenAI`` in every other respect (configuration, the SDK's error
    types, any other endpoint), so code that takes one takes this. ``api_key`` None sends no
    ``Authorization`` header (local servers need none; the SDK itself insists on a key, so it
    gets a placeholder it never sends through the transport). ``timeout_s``: seconds per call.
    ``pool_size``: the most connections to the endpoint at once. :meth:`close` closes both."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        pool_size: int,
    ) -> None:
        super().__init__(
            api_key=api_key or "no-key",
            base_url=base_url,
            timeout=timeout_s,
            # The queue owns retries (backoff through retry queues); SDK retries
            # would multiply attempts and hold a worker slot while sleeping.
            max_retries=0,
        )
        self.transport = ChatTransport(
            self,
            # The SDK's own join of the base URL and the path (trailing slash, query kept).
            str(self._prepare_url("chat/completions")),
            request_headers(self, send_key=api_key is not None),
            timeout_s,
            pool_size,
        )

    async def close(self) -> None:
        await self.transport.close()
        await super().close()


def make_llm_client(settings: LlmSettings, *, concurrency: int = 64) -> LLMClient:
    """A client for ``OPENAI_BASE_URL`` (the SDK's default when unset) with ``OPENAI_TIMEOUT_S``
    per call, no SDK retries, a connection pool of twice ``concurrency`` (the caller's jobs in
    flight, ``WORKER_CONCURRENCY`` in the worker: a job's core and subtasks calls run at once),
    and the call options of ``settings`` attached (see :func:`call_options`)."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    client = LLMClient(
        api_key=key or None,
        base_url=settings.openai_base_url,
        timeout_s=settings.openai_timeout_s,
        pool_size=2 * concurrency,
    )
    return configure(client, CallOptions.from_settings(settings))
