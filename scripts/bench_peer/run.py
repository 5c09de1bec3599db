"""Starts the peer (simulator, callback receiver, ``taskiq worker`` with its
worker processes) against the local RabbitMQ with queues of its own, and
measures bursts the way ``scripts/bench.py`` measures taskmesh."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aio_pika
import httpx
from bench_procs import children, cpu_seconds, rabbit_pid

SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
#: Seconds to wait for a process to answer after its start; the machine may be busy.
START_TIMEOUT_S = 90.0
#: Seconds between two looks at the receiver's count: the same as for taskmesh
#: (scripts/bench.py POLL_S).
POLL_S = 0.1


@dataclass
class Burst:
    """One measured burst: ``rate`` in jobs/s (first submission to last callback);
    ``cpu_ms`` CPU milliseconds per job by process name; ``jobs`` settled."""

    rate: float
    jobs: int
    cpu_ms: dict[str, float] = field(default_factory=dict)


class PeerScenario:
    """The peer's processes for one run; a context manager that stops them and
    deletes the run's queues and exchange.

    ``workers`` worker processes, each with ``concurrency`` jobs in flight at
    most (Taskiq's ``--max-async-tasks`` and the broker's prefetch); ``llm`` is
    ``openai`` or ``aiohttp`` (see ``bench_peer.app``); ``sentences`` is the mix
    of ``bench_peer.sentences``, numbered on across the scenario's bursts.
    """

    def __init__(
        self,
        sim_latency_ms: int,
        rabbitmq_url: str,
        ports: tuple[int, int],
        workers: int = 2,
        concurrency: int = 256,
        llm: str = "openai",
        sentences: str = "varied",
    ) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.sim_port, self.receiver_port = ports
        self.workers = workers
        self.rabbitmq_url = rabbitmq_url
        self.queue = f"bench-peer-{uuid.uuid4().hex[:8]}"
        self.latency_ms = sim_latency_ms
        self.concurrency = concurrency
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(ROOT)]),
            "RABBITMQ_URL": rabbitmq_url,
            "PEER_QUEUE": self.queue,
            "PEER_CONCURRENCY": str(concurrency),
            "PEER_LLM": llm,
            "PEER_LLM_URL": f"http://127.0.0.1:{self.sim_port}/v1",
            "PEER_CALLBACK_URL": f"http://127.0.0.1:{self.receiver_port}/callback",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        #: Jobs called back so far, over every burst of this scenario.
        self.settled = 0
        self._bursts = 0
        self.sentences = sentences
        #: Number of the next burst's first sentence.
        self._first = 0
        self._logs: list[IO[bytes]] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(Path(self.tmp.name) / f"{name}.log", "ab")  # noqa: SIM115
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args], env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        self.procs[name] = proc
        return proc

    def __enter__(self) -> PeerScenario:
        try:
            self._start(
                "llm-sim",
                [
                    "-m",
                    "launcher",
                    "llm-sim",
                    "--port",
                    str(self.sim_port),
                    "--latency-ms",
                    str(self.latency_ms),
                ],
            )
            self._start("receiver", ["-m", "bench_peer.receiver", str(self.receiver_port)])
            self._start(
                "taskiq",
                [
                    "-m",
                    "taskiq",
                    "worker",
                    "bench_peer.app:broker",
                    "--workers",
                    str(self.workers),
                    "--max-async-tasks",
                    str(self.concurrency),
                    "--log-level",
                    "WARNING",
                ],
            )
            self._wait_http(f"http://127.0.0.1:{self.sim_port}/v1/models")
            self._wait_http(f"http://127.0.0.1:{self.receiver_port}/stats")
            asyncio.run(self._wait_consumers())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        asyncio.run(self._delete_topology())
        self.tmp.cleanup()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = (Path(self.tmp.name) / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"peer {name} exited with {proc.returncode}:\n{log[-2000:]}")

    def _wait_http(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not answer")

    async def _wait_consumers(self) -> None:
        """Until every worker process consumes the run's queue."""
        deadline = time.monotonic() + START_TIMEOUT_S
        conn = await aio_pika.connect(self.rabbitmq_url, timeout=10)
        async with conn:
            while time.monotonic() < deadline:
                self.check_alive()
                channel = await conn.channel()
                try:
                    queue = await channel.declare_queue(self.queue, passive=True, timeout=10)
                    if queue.declaration_result.consumer_count >= self.workers:
                        return
                except aio_pika.exceptions.ChannelClosed:
                    pass  # not declared yet: the channel closes on a passive miss
                await asyncio.sleep(0.2)
        raise TimeoutError("the peer's workers did not start consuming")

    async def _delete_topology(self) -> None:
        conn = await aio_pika.connect(self.rabbitmq_url, timeout=10)
        async with conn:
            channel = await conn.channel()
            for name in (self.queue, f"{self.queue}.dead_letter"):
                await channel.queue_delete(name, timeout=10)
            await channel.exchange_delete(self.queue, timeout=10)

    def pids(self) -> dict[str, int]:
        """Every process of the peer by name: ``taskiq`` (the supervisor), its
        worker processes (``worker#1``…), ``receiver``, ``llm-sim``."""
        out = {name: proc.pid for name, proc in self.procs.items()}
        for i, pid in enumerate(children(out["taskiq"]), 1):
            out[f"worker#{i}"] = pid
        return out

    def cpu(self, extra: dict[str, int]) -> dict[str, float]:
        pids = {**self.pids(), **extra}
        out = {name: cpu_seconds(pid) for name, pid in pids.items()}
        if (pid := rabbit_pid()) is not None:
            out["rabbitmq"] = cpu_seconds(pid)
        return out

    async def _settled(self, jobs: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.receiver_port}") as http:
            while True:
                distinct = (await http.get("/stats", timeout=5)).json()["distinct"]
                if distinct >= jobs or time.monotonic() > deadline:
                    return distinct
                self.check_alive()
                await asyncio.sleep(POLL_S)

    def burst(
        self,
        jobs: int,
        clients: int = 64,
        timeout: float = 600,
        around: Callable[[dict[str, int]], AbstractContextManager[object]] | None = None,
    ) -> Burst:
        """Submits ``jobs`` from ``clients`` concurrent clients at once and waits
        until every job's callback arrived (or ``timeout`` seconds passed).
        ``around``, given every process's pid by name (the producer's too),
        returns a context entered for the measured part (e.g. a profiler).

        Raises RuntimeError if a process of the peer died or not every job
        called back in time."""
        producer = subprocess.Popen(
            [sys.executable, "-m", "bench_peer.producer", "--jobs", str(jobs)]
            + ["--clients", str(clients), "--prefix", f"b{self._bursts}-"]
            + ["--first", str(self._first), "--sentences", self.sentences],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert producer.stdin is not None and producer.stdout is not None
        try:
            if producer.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"the peer's producer exited with {producer.wait()}")
            extra = {"producer": producer.pid}
            with around({**self.pids(), **extra}) if around else nullcontext():
                before = self.cpu(extra)
                start = time.perf_counter()
                producer.stdin.write(b"go\n")
                producer.stdin.flush()
                settled = asyncio.run(self._settled(self.settled + jobs, timeout))
                settled -= self.settled
                end = time.perf_counter()
                if producer.stdout.readline().strip() != b"done":
                    raise RuntimeError(f"the peer's producer exited with {producer.wait()}")
                after = self.cpu(extra)
        finally:
            producer.stdin.close()
            try:
                producer.wait(30)
            except subprocess.TimeoutExpired:
                producer.kill()
                producer.wait()
            producer.stdout.close()
        self._bursts += 1
        self._first += jobs
        self.settled += settled
        if settled < jobs:
            raise RuntimeError(f"peer: {settled}/{jobs} jobs called back within {timeout:.0f} s")
        cpu_ms = {k: (after[k] - before.get(k, after[k])) / jobs * 1000 for k in after}
        return Burst(jobs / (end - start), settled, cpu_ms)
