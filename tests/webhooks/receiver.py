"""A real local HTTP endpoint that receives webhooks and verifies their
Standard Webhooks signatures with the ``standardwebhooks`` package, as a
client of taskmesh would."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    #: The parsed body when the signature verified, else None.
    verified: Any

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


#: Decides the answer to the n-th request (0-based): a status code.
Responder = Callable[[int, "Receiver"], int]


class Receiver:
    """Records every POST; answers what ``responder`` says (200 by default).
    ``gate``: while not set, requests wait (a slow or hung receiver)."""

    def __init__(self, secret: str | None = None, responder: Responder | None = None) -> None:
        self.secret = secret
        self.responder: Responder = responder or (lambda n, r: 200)
        self.received: list[Received] = []
        self.waiting = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.waiting += 1
                receiver.gate.wait(60)
                with receiver._lock:
                    receiver.waiting -= 1
                    verified = receiver._verify(body, headers)
                    n = len(receiver.received)
                    receiver.received.append(Received(self.path, headers, body, verified))
                status = receiver.responder(n, receiver)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/redirected")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _verify(self, body: bytes, headers: dict[str, str]) -> Any:
        if self.secret is None:
            return None
        try:
            return Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            return None

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


async def eventually(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Polls ``predicate`` until it returns something truthy; fails at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.05)
