"""The simulator's HTTP side: an OpenAI chat-completions endpoint that answers with the
engine's deterministic rules and injects the faults the options ask for, served by the small
HTTP/1.1 server of :mod:`llm_sim.http`."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from .engine import answer, classify_request
from .http import HttpServer, Request, Response, json_response
from .options import SimOptions

MODEL_ID = "taskmesh-sim"
#: What a rambling model keeps adding (issue 14.2: "kept adding suggestions").
_RAMBLE = ' Another idea: "Consider one more step to make it even better."'


def _has_type_list(node: object) -> bool:
    """Whether a JSON schema (or a response_format holding one) has ``"type": [...]``."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), list):
            return True
        return any(_has_type_list(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_type_list(value) for value in node)
    return False


def _error(
    status: int, message: str, kind: str, code: str | None = None, **headers: str
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(body, status=status, headers=headers or None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


class SimServer:
    """One simulator instance inside the running event loop.

    ``port=0`` binds an ephemeral port; :attr:`port` is the bound one once started."""

    def __init__(self, options: SimOptions, host: str = "127.0.0.1", port: int = 8089) -> None:
        self.options = options
        self.host = host
        self._port = port
        self._rngs: dict[str, random.Random] = {}
        self._server: HttpServer | None = None
        #: Path -> (methods, handler).
        self._routes: dict[str, tuple[frozenset[str], Callable[[Request], Awaitable[Response]]]] = {
            "/v1/chat/completions": (frozenset({"POST"}), self._completions),
            "/v1/models": (frozenset({"GET"}), self._models),
            "/sim/gate": (frozenset({"GET", "POST"}), self._gate_route),
        }
        self._stopping = asyncio.Event()
        #: Calls sleeping in :meth:`_sleep`; woken at once by :meth:`stop`.
        self._sleepers: set[asyncio.Future[None]] = set()
        self._calls: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._tokens: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._sequence = 0
        self._held = 0
        self._first_call: float | None = None
        #: Set while calls may answer; cleared, every call waits at the gate
        #: (tests make "N calls in flight" a state they hold, not a window they race).
        self._gate = asyncio.Event()
        if not options.hold:
            self._gate.set()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/v1"

    @property
    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self._calls),
            "faults": dict(self._faults),
            "tokens": {"prompt": self._tokens["prompt"], "completion": self._tokens["completion"]},
            "in_flight": self._in_flight,
            "held": self._held,
            "max_in_flight": self._max_in_flight,
            "connections": len(self._server.connections) if self._server is not None else 0,
        }

    def reset_stats(self) -> None:
        self._calls.clear()
        self._faults.clear()
        self._tokens.clear()
        self._max_in_flight = self._in_flight

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self._port), family=family, backlog=1024)
        self._port = sock.getsockname()[1]
        self._stopping = asyncio.Event()
        server = HttpServer(self._route)
        try:
            await server.start(sock)
        except BaseException:
            sock.close()
            raise
        self._server = server

    async def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        # Hanging and delayed calls return at once so their connections can close.
        self._stopping.set()
        for waiter in list(self._sleepers):
            _wake(waiter)
        await server.stop()

    async def _route(self, request: Request) -> Response:
        route = self._routes.get(request.path)
        if route is None:
            return _error(404, f"Requested URL {request.path} not found", "invalid_request_error")
        methods, handler = route
        if request.method not in methods:
            return _error(
                405,
                f"Method {request.method} not allowed for URL {request.path}",
                "invalid_request_error",
                allow=", ".join(sorted(methods)),
            )
        return await handler(request)

    def hold(self) -> None:
        """Calls arriving from now on (and those not yet answered) wait until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    async def _gate_route(self, request: Request) -> Response:
        """``POST /sim/gate {"open": bool}`` holds or releases calls; ``GET`` reads the
        gate and the calls waiting at it. A test control, not part of the OpenAI API."""
        if request.method == "POST":
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                body = {}
            if not isinstance(body.get("open"), bool):
                return _error(400, 'expected {"open": true|false}', "invalid_request_error")
            self.release() if body["open"] else self.hold()
        return json_response({"open": self._gate.is_set(), **self.stats})

    async def _pass_gate(self) -> None:
        if self._gate.is_set():
            return
        gate = asyncio.ensure_future(self._gate.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        self._held += 1
        try:
            await asyncio.wait({gate, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._held -= 1
            gate.cancel()
            stopping.cancel()

    async def _sleep(self, seconds: float) -> None:
        """Waits ``seconds``, or less if the server stops meanwhile. A bare timer on a future
        (no task per call, as ``wait_for(stopping.wait())`` would start): every call sleeps."""
        if seconds <= 0 or self._stopping.is_set():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleepers.discard(waiter)

    def _rng(self, kind: str) -> random.Random:
        # One stream per prompt kind: with a seed, the n-th core call meets the same fate
        # however it interleaves with subtasks calls.
        rng = self._rngs.get(kind)
        if rng is None:
            seed = None if self.options.seed is None else f"{self.options.seed}:{kind}"
            rng = self._rngs[kind] = random.Random(seed)
        return rng

    def _delay_s(self, kind: str) -> float:
        jitter = self.options.jitter_ms
        offset = self._rng(kind).uniform(-jitter, jitter) if jitter else 0.0
        return max(0.0, self.options.latency_ms + offset) / 1000

    def _draw_fault(self, kind: str) -> str | None:
        o = self.options
        draw, edge = self._rng(kind).random(), 0.0
        if o.fault_kinds and kind not in o.fault_kinds:
            return None
        for fault, rate in (
            ("429", o.rate_429),
            ("500", o.rate_500),
            ("timeout", o.rate_timeout),
            ("malformed", o.rate_malformed),
        ):
            edge += rate
            if rate and draw < edge:
                return fault
        return None

    def _rate_limit_left(self) -> float:
        """Seconds left of the rate-limit window that opens at the first call (0: none)."""
        window = self.options.rate_limit_window_s
        if not window:
            return 0.0
        now = time.monotonic()
        if self._first_call is None:
            self._first_call = now
        return max(0.0, self._first_call + window - now)

    async def _models(self, request: Request) -> Response:
        model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "taskmesh"}
        return json_response({"object": "list", "data": [model]})

    async def _completions(self, request: Request) -> Response:
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            return await self._complete(request)
        finally:
            self._in_flight -= 1

    async def _complete(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "expected a JSON body with a messages list", "invalid_request_error")
        if body.get("stream"):
            return _error(400, "streaming is not supported", "invalid_request_error")
        messages: list[Any] = body["messages"]
        kind = classify_request(body)
        await self._pass_gate()
        self._calls[kind] += 1

        refusal = self._refusal(body, messages)
        if refusal is not None:
            return refusal
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            max_tokens = None

        window_left = self._rate_limit_left()
        if window_left > 0:
            self._faults["429"] += 1
            return _error(
                429,
                "Rate limit reached for requests (simulated window).",
                "requests",
                "rate_limit_exceeded",
                **{"retry-after": str(math.ceil(window_left))},
            )
        fault = self._draw_fault(kind)
        if fault is not None:
            self._faults[fault] += 1
        if fault == "429":
            after = self.options.retry_after_s
            return _error(
                429,
                "Rate limit reached for requests (simulated).",
                "requests",
                "rate_limit_exceeded",
                **{"retry-after": f"{after:g}", "retry-after-ms": f"{after * 1000:.0f}"},
            )
        if self.options.ramble and max_tokens is None:
            # A runaway generation: only the client's timeout ends it.
            self._faults["runaway"] += 1
            await self._sleep(self.options.timeout_hang_s)
            return _error(504, "The simulated generation ran away.", "server_error", "timeout")
        if fault == "timeout":
            await self._sleep(self.options.timeout_hang_s)
            return _error(504, "The simulated call timed out.", "server_error", "timeout")
        await self._sleep(self._delay_s(kind))
        if fault == "500":
            return _error(500, "The server had an error (simulated).", "server_error")

        content = answer(kind, messages)
        if self.options.grammar_without_type_lists and _has_type_list(body.get("response_format")):
            self._faults["unconstrained"] += 1
            content = "{}"
        if fault == "malformed":
            content = content[: max(1, len(content) // 2)]
        finish_reason = "stop"
        if self.options.ramble:
            content = content + _RAMBLE * (4 * (max_tokens or 1) // len(_RAMBLE) + 1)
        if max_tokens is not None and _tokens(len(content)) > max_tokens:
            # Generation stops at the bound, as every server does with max_tokens.
            content = content[: max_tokens * 4]
            finish_reason = "length"
        prompt_chars = sum(
            len(m.get("content") or "") for m in messages if isinstance(m.get("content"), str)
        )
        usage = {"prompt_tokens": _tokens(prompt_chars), "completion_tokens": _tokens(len(content))}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self._tokens["prompt"] += usage["prompt_tokens"]
        self._tokens["completion"] += usage["completion_tokens"]
        self._sequence += 1
        return json_response(
            {
                "id": f"chatcmpl-sim-{self._sequence}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or MODEL_ID),
                "system_fingerprint": MODEL_ID,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                **({} if self.options.omit_usage else {"usage": usage}),
            }
        )

    def _refusal(self, body: dict[str, Any], messages: list[Any]) -> Response | None:
        """The refusals of real servers the options ask for, in their own words."""
        o = self.options
        if o.reject_400 is not None:
            self._faults["rejected"] += 1
            return _error(400, o.reject_400, "invalid_request_error")
        response_format = body.get("response_format")
        if (
            o.refuse_json_schema
            and isinstance(response_format, dict)
            and response_format.get("type") == "json_schema"
        ):
            self._faults["json_schema_refused"] += 1
            # llama-cpp-python's server: a 500 naming the field it could not handle.
            return _error(
                500,
                "1 validation error for CreateChatCompletionRequest: response_format: "
                "Input tag 'json_schema' found using 'type' does not match any of the "
                "expected tags: 'text', 'json_object'",
                "internal_server_error",
            )
        if o.no_system_role and any(
            isinstance(m, dict) and m.get("role") == "system" for m in messages
        ):
            self._faults["system_refused"] += 1
            return _error(
                400, "System role not supported by this chat template", "invalid_request_error"
            )
        return None
