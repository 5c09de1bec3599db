"""A chat-completions call at the cost of an HTTP POST (issue 12).

The ``openai`` SDK spends about 3 ms of client CPU per call on machinery taskmesh does not use
(parameter transforms over TypedDicts, option copies, httpx request building, a pydantic
response); a POST of a pre-encoded body through a pool of kept-alive connections
(:mod:`.http_pool`) costs a small part of that (``scripts/bench_llm_client.py``), and so does,
at about three times the POST's CPU, one pooled aiohttp session, which serves endpoints
reached through a proxy from the environment and processes that trace. This module makes that
POST and keeps the SDK's wire semantics: the URL is the SDK's own join of the base URL, the
headers are the SDK client's defaults, the timeout is applied to the same phases as the SDK's
aiohttp transport, and every failure is raised as the exception the SDK raises for it (built
only on the error path), so the classification in :mod:`taskmesh.capabilities.llm_calls` sees
exactly what it saw before.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment

import aiohttp
import httpx2
import openai

from taskmesh import tracing

from .http_pool import HttpConnectionError, HttpPool, HttpResponse

#: The SDK client's default headers that describe the client library rather than the request;
#: servers ignore them, and leaving them out keeps each request small.
_SDK_ONLY_HEADERS = ("x-stainless-",)
_DECODED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Answer:
    """The parts of a chat-completions response taskmesh uses: the first choice's ``content``
    (None when absent) and ``finish_reason``, the ``model`` that answered, and the reported
    ``prompt_tokens`` / ``completion_tokens`` (None when the endpoint sent no ``usage``)."""

    content: str | None
    finish_reason: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None

    @classmethod
    def from_completion(cls, completion: Any) -> Answer:
        """From an SDK ``ChatCompletion`` (or anything of its shape)."""
        choices = getattr(completion, "choices", None) or []
        choice = choices[0] if choices else None
        usage = getattr(completion, "usage", None)
        return cls(
            content=choice.message.content if choice is not None else None,
            finish_reason=choice.finish_reason if choice is not None else None,
            model=getattr(completion, "model", None),
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )


def parse_answer(raw: bytes) -> Answer:
    """The :class:`Answer` in a response body. Raises ``ValueError`` (or ``TypeError``) when the
    body is not JSON or not of the chat-completions shape (OpenAI API reference,
    ``POST /chat/completions``)."""
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("the response is not a JSON object")
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    content: str | None = None
    finish_reason: str | None = None
    if choice is not None:
        message = choice.get("message") or {}
        content = message.get("content")
        finish_reason = choice.get("finish_reason")
        if content is not None and not isinstance(content, str):
            raise ValueError("message.content is not a string")
    usage = data.get("usage")
    prompt_tokens = completion_tokens = None
    if isinstance(usage, dict):
        prompt_tokens = _count(usage.get("prompt_tokens"))
        completion_tokens = _count(usage.get("completion_tokens"))
    model = data.get("model")
    return Answer(
        content=content,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        model=model if isinstance(model, str) else None,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a token count is not a number")
    return int(value)


def request_headers(client: openai.AsyncOpenAI, *, send_key: bool) -> dict[str, str]:
    """The headers the SDK ``client`` sends on every request (``Content-Type``, ``Accept``,
    ``User-Agent``, organisation/project and custom headers), without the SDK's own
    ``X-Stainless-*`` telemetry; ``Authorization: Bearer <key>`` only when ``send_key``."""
    headers: dict[str, str] = {}
    for name, value in client.default_headers.items():
        lowered = name.lower()
        if isinstance(value, str) and lowered != "authorization":
            if not lowered.startswith(_SDK_ONLY_HEADERS):
                headers[name] = value
    if send_key and client.api_key:
        headers["Authorization"] = f"Bearer {client.api_key}"
    return headers


def env_proxy(url: str, env: dict[str, str] | None = None) -> str | None:
    """The proxy for ``url`` from ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` unless
    ``NO_PROXY`` names its host (the variables the SDK's httpx client honours), or None.
    ``env``: the variables (default: the process environment)."""
    parts = urlsplit(url)
    proxies = getproxies_environment() if env is None else _proxies_in(env)
    host = parts.hostname or ""
    no_proxy = proxies.get("no", "")
    if host and no_proxy and _bypassed(host, no_proxy):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


def _proxies_in(env: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in env.items():
        lowered = name.lower()
        if value and lowered.endswith("_proxy"):
            out[lowered.removesuffix("_proxy")] = value
    return out


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        entry = entry.lstrip(".").split(":")[0]
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False


class ChatTransport:
    """POSTs chat-completions bodies to one endpoint through an :class:`HttpPool`, or through
    one shared aiohttp session when the environment names a proxy for it (:func:`env_proxy`) or
    tracing is on (:func:`taskmesh.tracing.active`; build the client after configuring it).

    ``errors``: the SDK client whose exception classes (and status → class mapping) the
    transport raises with. ``url``: the full ``…/chat/completions`` URL. ``headers``: sent on
    every request. ``timeout_s``: seconds, the default per call, applied like the SDK's aiohttp
    transport does (connection from the pool, socket connect, and each socket read; no total).
    ``pool_size``: the most connections open at once (calls beyond it wait for one).
    ``ssl_context``: for an https endpoint (default: the system trust store). Raises
    ``ValueError`` for headers that cannot be sent (see :class:`HttpPool`).

    The pool (or session) is opened on the first call (it belongs to the running event loop)
    and closed by :meth:`close`."""

    def __init__(
        self,
        errors: openai.AsyncOpenAI,
        url: str,
        headers: dict[str, str],
        timeout_s: float,
        pool_size: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._errors = errors
        self.url = url
        self.headers = headers
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self.proxy = env_proxy(url)
        #: Whether calls go through the aiohttp session instead of the pool: behind a proxy, and
        #: while tracing is on (the maintained aiohttp-client instrumentation makes each call's
        #: client span and carries the trace context; the pool does neither).
        self.via_session = self.proxy is not None or tracing.active()
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ssl_context = ssl_context
        self._pool: HttpPool | None = None
        # Built now, so a header that cannot be sent stops the process at start, not a job.
        self._pool = self._pool_now()

    def _pool_now(self) -> HttpPool:
        if self._pool is None:
            self._pool = HttpPool(
                self.url, self.headers, limit=self.pool_size, ssl_context=self._ssl_context
            )
        return self._pool

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size),
                headers=self.headers,
                # Not trust_env: it reads ~/.netrc in a thread for every request (a thread-pool
                # hop per call, the largest client cost in the worker's profile); the proxy is
                # read from the environment once instead (see env_proxy).
            )
        return self._session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(
                total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
            )
            self._timeouts[seconds] = timeout
        return timeout

    async def complete(self, body: dict[str, Any], timeout_s: float | None = None) -> Answer:
        """One call with ``body`` (a chat-completions request, JSON-encodable) and ``timeout_s``
        (seconds; None → the transport's): :meth:`post` of its compact JSON encoding (the
        bytes the SDK sends, without its per-call transforms). Raises ``UnicodeEncodeError``
        for text with a lone surrogate, else as :meth:`post`."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        return await self.post(data, timeout_s)

    async def post(self, data: bytes, timeout_s: float | None = None) -> Answer:
        """One call with ``data`` (an encoded chat-completions request body, UTF-8 JSON) and
        ``timeout_s`` (seconds; None → the transport's). Raises what the SDK raises:
        ``APITimeoutError``, ``APIConnectionError``, the ``APIStatusError`` subclass of a
        non-2xx status, or ``APIResponseValidationError`` for a 2xx body that is not a chat
        completion."""
        if not self.via_session:
            return await self._post_direct(data, self.timeout_s if timeout_s is None else timeout_s)
        timeout = self._timeout(self.timeout_s if timeout_s is None else timeout_s)
        try:
            async with self._session_now().post(
                self.url, data=data, timeout=timeout, proxy=self.proxy
            ) as response:
                raw = await response.read()
                status = response.status
                if status >= 400:
                    raise self._status_error(status, response.headers, raw)
        except TimeoutError:
            raise openai.APITimeoutError(request=self._request()) from None
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(
                message=f"Connection error: {type(exc).__name__}", request=self._request()
            ) from exc
        return self._answer(status, raw)

    async def _post_direct(self, data: bytes, timeout_s: float) -> Answer:
        try:
            response: HttpResponse = await self._pool_now().post(data, timeout_s)
        except TimeoutError:
            raise openai.APITimeoutError(request=self._request()) from None
        except HttpConnectionError as exc:
            raise openai.APIConnectionError(
                message=f"Connection error: {exc}", request=self._request()
            ) from exc
        if response.status >= 400:
            raise self._status_error(response.status, response.headers, response.body)
        return self._answer(response.status, response.body)

    def _answer(self, status: int, raw: bytes) -> Answer:
        try:
            return parse_answer(raw)
        except (ValueError, TypeError, AttributeError) as exc:
            response_ = self._response(status, {}, raw)
            raise openai.APIResponseValidationError(
                response=response_, body=raw.decode("utf-8", "replace"), message=str(exc)
            ) from exc

    def _request(self) -> httpx2.Request:
        return httpx2.Request("POST", self.url)

    def _response(self, status: int, headers: Any, raw: bytes) -> httpx2.Response:
        # Any content encoding is already undone; the rebuilt response must not claim it again.
        pairs = headers.items() if hasattr(headers, "items") else headers
        kept = [(k, v) for k, v in pairs if k.lower() not in _DECODED_HEADERS]
        return httpx2.Response(status, headers=kept, content=raw, request=self._request())

    def _status_error(self, status: int, headers: Any, raw: bytes) -> openai.APIStatusError:
        # The SDK's own constructor: the same subclass, body and message as an SDK call.
        return self._errors._make_status_error_from_response(self._response(status, headers, raw))

    async def close(self) -> None:
        """Closes the pool or session (open connections included); a later call opens a new
        one."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None
