"""``taskmesh up`` as a newcomer runs it, on ports other than the defaults
(SPEC §3): the banner's command works verbatim, the generated internal token
is kept in .taskmesh/internal-token (0600) and works with grpcurl, a line says
when the system is ready, and a second consumer on the queue is warned about."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import pytest

from launcher.up import _broker, client_url, other_consumers
from taskmesh.queue.topology import JobTopology
from tests.e2e.test_grpcurl import grpcurl
from tests.support.broker import delete_queues
from tests.support.machine import free_port

#: A slow machine starts five processes and RabbitMQ declarations in well under this.
READY_WITHIN_S = 100


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    pump: threading.Thread
    seen: list[str] = field(default_factory=list)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.seen:
                if match := re.search(pattern, line):
                    return match
            try:
                self.seen.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.seen))


def _taskmesh() -> str:
    found = shutil.which("taskmesh", path=str(Path(sys.executable).parent))
    assert found, "the taskmesh script is installed beside the interpreter"
    return found


def _up_env(queue_name: str, rabbitmq_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TASKMESH_", "OPENAI_", "INTERNAL_AUTH", "GATEWAY_", "JOB_"))
    }
    env.update(
        {
            "RABBITMQ_URL": rabbitmq_url,
            "JOB_QUEUE": queue_name,
            "GATEWAY_PORT": str(free_port()),
            "TASKS_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "AI_GRPC_ADDR": f"127.0.0.1:{free_port()}",
            "LLM_SIM_PORT": str(free_port()),
            "TASKS_METRICS_PORT": "0",
            "AI_METRICS_PORT": "0",
            "WORKER_METRICS_PORT": "0",
            "SHUTDOWN_GRACE_S": "5",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.fixture
def start_up(tmp_path: Path, rabbitmq_url: str, queue_name: str) -> Iterator:
    started: list[Up] = []
    orphaned: list[Up] = []

    def start() -> tuple[Up, dict[str, str]]:
        env = _up_env(queue_name, rabbitmq_url)
        process = subprocess.Popen(
            [_taskmesh(), "up"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so that services it left behind can be found and stopped.
            start_new_session=True,
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        up = Up(process, lines, reader)
        started.append(up)
        return up, env

    try:
        yield start
    finally:
        for up in started:
            if up.process.poll() is None:
                up.process.send_signal(signal.SIGINT)
                try:
                    up.process.wait(30)
                except subprocess.TimeoutExpired:
                    up.process.kill()
                    up.process.wait()
            up.pump.join(10)
            if up.pump.is_alive():
                # Services outlived `taskmesh up` and still hold its stderr open: closing the
                # pipe under the reading thread would block for good, so stop them first.
                orphaned.append(up)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(up.process.pid, signal.SIGKILL)
                up.pump.join(10)
            assert up.process.stderr is not None
            up.process.stderr.close()

        asyncio.run(delete_queues(rabbitmq_url, queue_name))
    assert not orphaned, "taskmesh up stopped and left its services running"


@pytest.mark.e2e
@pytest.mark.integration
# Start, a job, the CLI and a clean stop: more than one slow step of the global limit.
@pytest.mark.timeout(300)
def test_first_run_on_other_ports_works_verbatim(start_up, tmp_path: Path) -> None:
    up, env = start_up()
    base = f"http://127.0.0.1:{env['GATEWAY_PORT']}"
    try_line = up.wait_for(r"^  try: (.+)$", 30).group(1)
    assert f"TASKMESH_URL={base} " in try_line
    up.wait_for(r"internal token kept in \.taskmesh/internal-token \(mode 0600", 5)
    up.wait_for(rf"^taskmesh is ready: {re.escape(base)}/readyz answers 200$", READY_WITHIN_S)
    assert not any("warning" in line for line in up.seen), up.seen

    token_file = tmp_path / ".taskmesh" / "internal-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32

    # The banner's command, copied verbatim.
    tried = subprocess.run(
        ["bash", "-c", try_line], cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    assert tried.returncode == 0, tried.stderr
    assert "succeeded" in tried.stderr

    # users list gives the id that grpcurl calls take; the kept token opens them.
    cli_env = {**env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/taskmesh.db"}
    listed = subprocess.run(
        [_taskmesh(), "users", "list"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    (dev,) = [line.split("\t") for line in listed.stdout.splitlines() if line.startswith("dev\t")]
    user_id = dev[1]
    assert re.fullmatch(r"[0-9a-f-]{36}", user_id)
    usage = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-d",
        f'{{"user_id": "{user_id}"}}',
        env["TASKS_GRPC_ADDR"],
        "taskmesh.tasks.v1.TasksService/GetUsage",
    )
    assert usage.returncode == 0, usage.stderr
    jobs = subprocess.run(
        [_taskmesh(), "jobs", "list"],
        cwd=tmp_path,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert jobs.returncode == 0, jobs.stderr
    assert len(jobs.stdout.splitlines()) == 1

    up.process.send_signal(signal.SIGINT)
    assert up.process.wait(60) == 0


async def _leave(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    await message.nack(requeue=True)


@pytest.mark.e2e
@pytest.mark.integration
def test_up_warns_when_another_consumer_is_on_its_queue(
    start_up, rabbitmq_url: str, queue_name: str
) -> None:
    async def hold_consumer(ready: threading.Event, release: threading.Event) -> None:
        connection = await aio_pika.connect(rabbitmq_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            declared = await JobTopology(queue_name).declare(channel)
            await declared.consume(_leave, no_ack=False)
            ready.set()
            while not release.is_set():
                await asyncio.sleep(0.05)

    ready, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=asyncio.run, args=(hold_consumer(ready, release),))
    holder.start()
    try:
        assert ready.wait(30)
        up, _ = start_up()
        warning = up.wait_for(r"^taskmesh: warning: (\d+) consumer\(s\) already on queue", 60)
        assert warning.group(1) == "1"
        assert any("JOB_QUEUE" in line for line in up.seen)
    finally:
        release.set()
        holder.join(30)


@pytest.mark.integration
def test_consumers_on_a_queue_are_counted(rabbitmq_url: str, queue_name: str) -> None:
    async def scenario() -> tuple[int | None, int | None]:
        connection = await aio_pika.connect(rabbitmq_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            before = await asyncio.to_thread(other_consumers, rabbitmq_url, queue_name)
            declared = await JobTopology(queue_name).declare(channel)
            await declared.consume(_leave, no_ack=False)
            during = await asyncio.to_thread(other_consumers, rabbitmq_url, queue_name)
            await JobTopology(queue_name).delete(channel)
        return before, during

    assert asyncio.run(scenario()) == (0, 1)
    unreachable = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    assert other_consumers(unreachable, queue_name) is None


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8181"),
        ("0.0.0.0", "http://127.0.0.1:8181"),
        ("localhost", "http://localhost:8181"),
        ("::1", "http://[::1]:8181"),
    ],
)
def test_the_banner_url_is_one_a_client_can_use(host: str, url: str) -> None:
    assert client_url(host, 8181) == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@localhost:5672/", "localhost:5672"),
        ("amqp://guest:s3cret@10.0.0.5/", "10.0.0.5:5672"),
        ("amqp://guest:guest@127.0.0.1:5672/trial", "127.0.0.1:5672 (virtual host 'trial')"),
        ("amqp://u:p@rabbit:5673/%2Fstaging", "rabbit:5673 (virtual host '/staging')"),
    ],
)
def test_the_banner_names_the_broker_and_its_virtual_host_never_the_credentials(
    url: str, shown: str
) -> None:
    assert _broker(url) == shown
    assert "guest" not in _broker(url) and "s3cret" not in _broker(url)
