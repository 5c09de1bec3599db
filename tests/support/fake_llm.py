"""An OpenAI-compatible endpoint whose answers and reported usage a test chooses:
answers as the simulator would, except that the first core answer for each sentence
fails validation (so the run needs its corrective call), and every call reports the
usage the test set for its kind. Runs in a thread of the test process (real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llm_sim.engine import answer, classify_request, user_sentence

#: Fails validation: no category, priority or a title of 2-8 words.
INVALID_CORE = json.dumps({"title": "x"})


def chat_completion(
    content: str, model: str = "m", prompt_tokens: int = 100, completion_tokens: int = 50
) -> dict[str, Any]:
    """A chat-completions response body (OpenAI's shape): one choice with ``content``,
    finished normally, and the usage given (tokens)."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class Call:
    kind: str
    corrective: bool
    sentence: str
    tokens: int


@dataclass
class FakeLLM:
    """``usage``: (input, output) tokens each call of a kind reports: "core" (first core
    calls), "corrective" and "subtasks". ``calls``: every call answered, in order."""

    usage: dict[str, tuple[int, int]]
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages") or []
        kind = classify_request(body)
        corrective = any(m.get("role") == "assistant" for m in messages)
        label = "corrective" if corrective and kind == "core" else kind
        content = INVALID_CORE if label == "core" else answer(kind, messages)
        prompt, completion = self.usage.get(label, (100, 50))
        with self._lock:
            self.calls.append(Call(label, corrective, user_sentence(messages), prompt + completion))
        return chat_completion(content, body.get("model", "fake"), prompt, completion)

    @property
    def reported(self) -> int:
        """Tokens of every call answered."""
        with self._lock:
            return sum(c.tokens for c in self.calls)

    def of(self, label: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == label]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        payload = json.dumps(self.fake.respond(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class FakeLLMServer:
    """``with FakeLLMServer(fake) as base_url:`` serves ``fake`` on an ephemeral port."""

    def __init__(self, fake: FakeLLM) -> None:
        handler = type("Handler", (_Handler,), {"fake": fake})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
