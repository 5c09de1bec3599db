"""``taskmesh up``: every service on this machine, one command, Ctrl-C stops all.

Children are separate processes (as in production), started with the same
environment plus what ``up`` fills in: an internal token, a development API
key (kept in .taskmesh/dev-api-key so it survives restarts with the same
database) and, without OPENAI_API_KEY, the simulator as the LLM endpoint."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from taskmesh.settings import load_settings
from taskmesh.stack import LocalStack

STATE_DIR = Path(".taskmesh")


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_rabbitmq(url: str) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 5672
    if _reachable(host, port):
        return True
    if host not in ("localhost", "127.0.0.1") or shutil.which("rabbitmq-server") is None:
        print(
            f"taskmesh: RabbitMQ does not answer at {host}:{port}; start one or set RABBITMQ_URL",
            file=sys.stderr,
        )
        return False
    print("starting the local rabbitmq-server …", file=sys.stderr)
    subprocess.run(["rabbitmq-server", "-detached"], check=False)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if _reachable(host, port):
            return True
        time.sleep(1)
    print("taskmesh: rabbitmq-server did not come up within 90 s", file=sys.stderr)
    return False


def _dev_key() -> str:
    path = STATE_DIR / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    STATE_DIR.mkdir(exist_ok=True)
    from services.tasks.domain.users import new_api_key

    key = new_api_key()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def up() -> int:
    settings = load_settings()
    if not ensure_rabbitmq(settings.rabbitmq_url):
        return 1
    env = dict(os.environ)
    env.setdefault("INTERNAL_AUTH_TOKEN", secrets.token_urlsafe(32))
    if "LOG_FORMAT" not in env and sys.stderr.isatty():
        env["LOG_FORMAT"] = "console"  # a person is watching; JSON stays the default elsewhere
    if not env.get("TASKMESH_DEV_API_KEY"):
        env["TASKMESH_DEV_API_KEY"] = _dev_key()
    names = ["tasks", "ai", "worker", "gateway"]
    if not settings.openai_api_key and not settings.openai_base_url:
        env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{settings.llm_sim_port}/v1"
        names.insert(0, "llm-sim")
    stack = LocalStack(env, names)
    stack.start()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    print(
        f"\ntaskmesh is starting:\n"
        f"  HTTP API   {base}/api/v1   (docs {base}/docs, readiness {base}/readyz)\n"
        f"  Tasks gRPC {settings.tasks_grpc_addr}   AI gRPC {settings.ai_grpc_addr}\n"
        f"  LLM        {env.get('OPENAI_BASE_URL') or 'OpenAI'}\n"
        f"  API key    {env['TASKMESH_DEV_API_KEY']}\n"
        f"  try: TASKMESH_API_KEY={env['TASKMESH_DEV_API_KEY']} taskmesh submit "
        f'"Pay the electricity bill tomorrow"\n'
        f"Ctrl-C stops everything.\n",
        file=sys.stderr,
    )
    code = 0
    while not stopping:
        try:
            stack.check_alive()
        except RuntimeError as exc:
            print(f"taskmesh: {exc}; stopping", file=sys.stderr)
            stopping, code = True, 1
        time.sleep(0.2)
    stack.stop(settings.shutdown_grace_s + 5)
    return code
