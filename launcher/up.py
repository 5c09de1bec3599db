"""``taskmesh up``: every service on this machine, one command, Ctrl-C stops all.

Children are separate processes (as in production), started with the same
environment plus what ``up`` fills in: an internal token, a development API
key (kept in .taskmesh/dev-api-key so it survives restarts with the same
database) and, without OPENAI_API_KEY, the simulator as the LLM endpoint.
The internal token it generates is kept in .taskmesh/internal-token (mode
0600), so grpcurl calls and ``taskmesh jobs list`` work from the same
directory (SPEC §3)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from launcher.internal import STATE_DIR, TOKEN_FILE, saved_or_new_token
from launcher.stack import LocalStack
from taskmesh.api_keys import new_api_key
from taskmesh.settings import Settings, load_settings

#: How long the services get to answer /readyz 200 before ``up`` says what is missing.
READY_TIMEOUT_S = 90.0
READY_PROBE_INTERVAL_S = 0.5
READY_PROBE_TIMEOUT_S = 1.0
CONSUMER_CHECK_TIMEOUT_S = 5.0


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
    key = new_api_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    path.chmod(0o600)
    return key


async def _consumers(url: str, queue: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=CONSUMER_CHECK_TIMEOUT_S)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return 0  # no such queue yet: nobody consumes it
        return int(declared.declaration_result.consumer_count or 0)


def other_consumers(url: str, queue: str) -> int | None:
    """Consumers already on ``queue`` (another ``taskmesh up`` or worker on this
    broker would share its jobs); None when the broker could not be asked."""
    try:
        return asyncio.run(asyncio.wait_for(_consumers(url, queue), CONSUMER_CHECK_TIMEOUT_S * 2))
    except Exception:
        return None


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a gateway listening on ``host``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _cli() -> str:
    """How to call this same ``taskmesh`` from the directory ``up`` runs in."""
    here = Path(sys.argv[0])
    found = shutil.which("taskmesh")
    if found and here.name == "taskmesh" and Path(found).resolve() == here.resolve():
        return "taskmesh"
    if here.name == "taskmesh":
        try:
            return str(here.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(here.resolve())
    return "taskmesh"


def banner(base: str, env: dict[str, str], settings: Settings, token_note: str, cli: str) -> str:
    """What ``up`` prints first (SPEC §3): URLs, the key, where the internal token
    is, and a command that works verbatim with the configured ports."""
    key = env["TASKMESH_DEV_API_KEY"]
    return (
        f"\ntaskmesh is starting:\n"
        f"  HTTP API   {base}/api/v1   (docs {base}/docs, readiness {base}/readyz)\n"
        f"  Tasks gRPC {settings.tasks_grpc_addr}   AI gRPC {settings.ai_grpc_addr}\n"
        f"  LLM        {env.get('OPENAI_BASE_URL') or 'OpenAI'}\n"
        f"  queue      {settings.job_queue} on {_broker(settings.rabbitmq_url)}\n"
        f"  API key    {key}\n"
        f"  internal token {token_note}\n"
        f"  try: TASKMESH_URL={base} TASKMESH_API_KEY={key} {cli} submit "
        f'"Pay the electricity bill tomorrow"\n'
        f"Ctrl-C stops everything.\n"
    )


def _broker(url: str) -> str:
    """The broker as the banner names it: host:port, and the virtual host unless it is the
    default "/" (AMQP URI spec: the path, percent-decoded); never the credentials."""
    parts = urlsplit(url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5672}"
    vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
    return where if vhost == "/" else f"{where} (virtual host {vhost!r})"


def readiness(base: str) -> tuple[bool, str]:
    """Whether /readyz answers 200, and what is not up when it does not."""
    try:
        response = httpx.get(f"{base}/readyz", timeout=READY_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False, f"the gateway does not answer at {base}"
    if response.status_code == 200:
        return True, ""
    try:
        checks = response.json().get("checks") or {}
        down = [name for name, state in checks.items() if state != "ok"]
    except ValueError:
        down = []
    return False, f"{', '.join(down) or 'a dependency'} not serving"


def up() -> int:
    settings: Settings = load_settings()
    if not ensure_rabbitmq(settings.rabbitmq_url):
        return 1
    env = dict(os.environ)
    if env.get("INTERNAL_AUTH_TOKEN"):
        token_note = "from INTERNAL_AUTH_TOKEN"
    else:
        env["INTERNAL_AUTH_TOKEN"] = saved_or_new_token(TOKEN_FILE)
        token_note = (
            f"kept in {TOKEN_FILE} (mode 0600; grpcurl: "
            f'-H "authorization: Bearer $(cat {TOKEN_FILE})")'
        )
    if "LOG_FORMAT" not in env and sys.stderr.isatty():
        env["LOG_FORMAT"] = "console"  # a person is watching; JSON stays the default elsewhere
    if not env.get("TASKMESH_DEV_API_KEY"):
        env["TASKMESH_DEV_API_KEY"] = _dev_key()
    names = ["tasks", "ai", "worker", "gateway"]
    if not settings.openai_api_key and not settings.openai_base_url:
        env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{settings.llm_sim_port}/v1"
        names.insert(0, "llm-sim")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Installed before the first child starts: a Ctrl-C while they start (or just after the
    # warning below) must stop them, not end this process and leave them running without it.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    others = other_consumers(settings.rabbitmq_url, settings.job_queue)
    if others:
        # Issue 11 item 12: two stacks on one queue take each other's jobs.
        print(
            f"taskmesh: warning: {others} consumer(s) already on queue {settings.job_queue!r} "
            f"at {_broker(settings.rabbitmq_url)} (another taskmesh up or worker?): they will "
            f"take jobs submitted here, and this worker theirs. Set JOB_QUEUE to a name of "
            f"your own to keep them apart.",
            file=sys.stderr,
        )
    if stopping:
        return 1
    stack = LocalStack(env, names)
    stack.start()
    base = client_url(settings.gateway_host, settings.gateway_port)
    print(banner(base, env, settings, token_note, _cli()), file=sys.stderr, flush=True)
    code = 0
    ready_by: float | None = time.monotonic() + READY_TIMEOUT_S
    next_probe = 0.0
    while not stopping:
        try:
            stack.check_alive()
        except RuntimeError as exc:
            print(f"taskmesh: {exc}; stopping", file=sys.stderr)
            stopping, code = True, 1
            break
        now = time.monotonic()
        if ready_by is not None and now >= next_probe:
            next_probe = now + READY_PROBE_INTERVAL_S
            ready, missing = readiness(base)
            if ready:
                print(f"taskmesh is ready: {base}/readyz answers 200", file=sys.stderr, flush=True)
                ready_by = None
            elif now >= ready_by:
                print(
                    f"taskmesh: not ready after {READY_TIMEOUT_S:g} s: {missing}; "
                    f"see the services' logs above",
                    file=sys.stderr,
                    flush=True,
                )
                ready_by = None
        time.sleep(0.2)
    stack.stop(settings.shutdown_grace_s + 5)
    return code
