"""Benchmarks of the running system (SPEC §13). Prints figures; asserts nothing.

Starts the real processes (tasks, ai, worker, gateway, simulator) against the
local RabbitMQ and a fresh SQLite database, once per scenario:

1. accept path: 64 concurrent keep-alive clients POST /api/v1/tasks for a fixed
   time; 202s per second and p50/p99 latency;
2. end to end at simulator latency 0 ms and 200 ms: N jobs submitted at once;
   jobs per second until the last one settled (GET /api/v1/usage shows no
   reservation left), all checked succeeded; CPU seconds per job of each
   process (and RabbitMQ's) from /proc;
3. single-job latency at 1 s per LLM call: end-to-end job time (updatedAt -
   createdAt) minus the LLM time, median of several jobs.

Usage: python scripts/bench.py [--jobs N] [--accept-seconds S] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskmesh.queue.topology import JobTopology  # noqa: E402
from taskmesh.stack import LocalStack  # noqa: E402
from tests.conftest import free_port  # noqa: E402

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLK = os.sysconf("SC_CLK_TCK")


class Http:
    """A minimal HTTP/1.1 keep-alive client: the load generator shares the
    machine, so it must cost far less than the server it measures."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(
        self, method: str, path: str, body: bytes = b"", extra: str = ""
    ) -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rabbit_pid() -> int | None:
    out = subprocess.run(
        ["pgrep", "-f", "beam.smp.*rabbit"], capture_output=True, text=True
    ).stdout.split()
    return int(out[0]) if out else None


class Scenario:
    def __init__(
        self, sim_latency_ms: int, workers: int = 1, worker_concurrency: int = 512
    ) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        ports = {k: free_port() for k in ("gateway", "tasks", "ai", "sim")}
        self.port = ports["gateway"]
        self.key = "tm_" + secrets.token_urlsafe(32)
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.tmp.name}/bench.db",
            "RABBITMQ_URL": RABBITMQ_URL,
            "JOB_QUEUE": self.queue,
            "GATEWAY_PORT": str(ports["gateway"]),
            "TASKS_GRPC_ADDR": f"127.0.0.1:{ports['tasks']}",
            "AI_GRPC_ADDR": f"127.0.0.1:{ports['ai']}",
            "LLM_SIM_PORT": str(ports["sim"]),
            "LLM_SIM_LATENCY_MS": str(sim_latency_ms),
            "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['sim']}/v1",
            "OPENAI_API_KEY": "",
            "INTERNAL_AUTH_TOKEN": secrets.token_urlsafe(24),
            "TASKMESH_DEV_API_KEY": self.key,
            "TOKEN_WINDOW_LIMIT": str(10**12),
            "RATE_LIMIT_BUCKET_SIZE": str(10**9),
            "RATE_LIMIT_REFILL_PER_S": str(10**9),
            "WORKER_CONCURRENCY": str(worker_concurrency),
            "TASKS_METRICS_PORT": "0",
            "AI_METRICS_PORT": "0",
            "WORKER_METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
        }
        services = ["llm-sim", "tasks", "ai", *[f"worker#{i}" for i in range(workers)], "gateway"]
        self.stack = LocalStack(env, services, log_dir=Path(self.tmp.name) / "logs")

    def __enter__(self) -> Scenario:
        self.stack.start()
        self.stack.wait_ready(f"http://127.0.0.1:{self.port}", timeout=90)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.stop(20)

        async def cleanup() -> None:
            conn = await aio_pika.connect(RABBITMQ_URL)
            async with conn:
                await JobTopology(self.queue).delete(await conn.channel())

        asyncio.run(cleanup())
        self.tmp.cleanup()

    def cpu(self) -> dict[str, float]:
        out = {name: cpu_seconds(p.pid) for name, p in self.stack.procs.items()}
        pid = rabbit_pid()
        if pid:
            out["rabbitmq"] = cpu_seconds(pid)
        return out


BODY = json.dumps({"naturalLanguage": "Submit Q2 report by next Friday"}).encode()


async def accept_load(port: int, key: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    accepted = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal accepted
        http = Http(port, key)
        await http.open()
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            status, _ = await http.request("POST", "/api/v1/tasks", BODY)
            latencies.append(time.perf_counter() - start)
            accepted += status == 202
        await http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return accepted, latencies


async def drain(port: int, key: str, timeout: float = 600) -> float:
    http = Http(port, key)
    await http.open()
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        _, body = await http.request("GET", "/api/v1/usage")
        if json.loads(body)["reserved"] == 0:
            break
        await asyncio.sleep(0.02)
    await http.close()
    return time.perf_counter()


async def count(port: int, key: str) -> int:
    http = Http(port, key)
    await http.open()
    _, body = await http.request("GET", "/api/v1/tasks?take=1")
    await http.close()
    return int(json.loads(body)["pagination"]["totalCount"])


async def submit_all(port: int, key: str, jobs: int, clients: int = 64) -> None:
    per = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]

    async def client(n: int) -> None:
        http = Http(port, key)
        await http.open()
        for _ in range(n):
            status, body = await http.request("POST", "/api/v1/tasks", BODY)
            if status != 202:
                raise RuntimeError(f"submission answered {status}: {body[:200]!r}")
        await http.close()

    await asyncio.gather(*(client(n) for n in per))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def bench_accept(seconds: float, runs: int) -> None:
    rates, p50s, p99s = [], [], []
    for _ in range(runs):
        with Scenario(0) as sc:
            # Accept path only: the worker would compete for the same two cores.
            sc.stack.signal("worker#0", 19)  # SIGSTOP
            accepted, lat = asyncio.run(accept_load(sc.port, sc.key, 64, seconds))
            sc.stack.signal("worker#0", 18)  # SIGCONT
            rates.append(accepted / seconds)
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
    print(
        f"accept path (64 clients, {seconds:.0f} s, median of {runs}): "
        f"{statistics.median(rates):,.0f} 202/s, p50 {statistics.median(p50s):.1f} ms, "
        f"p99 {statistics.median(p99s):.1f} ms"
    )


def bench_end_to_end(latency_ms: int, jobs: int, runs: int) -> None:
    rates, cpu_rows = [], []
    for _ in range(runs):
        with Scenario(latency_ms) as sc:
            before = sc.cpu()
            start = time.perf_counter()
            asyncio.run(submit_all(sc.port, sc.key, jobs))
            end = asyncio.run(drain(sc.port, sc.key))
            after = sc.cpu()
            done = asyncio.run(count(sc.port, sc.key))
            if done != jobs:
                print(f"  WARNING: {done}/{jobs} jobs succeeded")
            rates.append(jobs / (end - start))
            cpu_rows.append({k: (after[k] - before.get(k, 0)) / jobs * 1000 for k in after})
    print(
        f"end to end, simulator at {latency_ms} ms/call, {jobs} jobs (median of {runs}): "
        f"{statistics.median(rates):,.0f} jobs/s"
    )
    names = cpu_rows[0].keys()
    per = {n: statistics.median(r[n] for r in cpu_rows) for n in names}
    print(
        "  CPU ms per job: "
        + ", ".join(f"{n} {v:.2f}" for n, v in per.items())
        + f"; total {sum(per.values()):.2f}"
    )


def bench_latency(latency_ms: int, samples: int) -> None:
    with Scenario(latency_ms) as sc:
        overheads = []

        async def one() -> float:
            http = Http(sc.port, sc.key)
            await http.open()
            _, body = await http.request("POST", "/api/v1/tasks", BODY)
            job_id = json.loads(body)["jobId"]
            while True:
                _, body = await http.request("GET", f"/api/v1/jobs/{job_id}")
                job = json.loads(body)
                if job["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.01)
            await http.close()
            created = datetime.fromisoformat(job["createdAt"].replace("Z", "+00:00"))
            updated = datetime.fromisoformat(job["updatedAt"].replace("Z", "+00:00"))
            return (updated - created).total_seconds()

        for _ in range(samples):
            overheads.append(asyncio.run(one()))
    med = statistics.median(overheads)
    print(
        f"single job, simulator at {latency_ms} ms/call: end-to-end p50 {med * 1000:.0f} ms "
        f"(core and subtasks calls run concurrently: LLM time ≈ {latency_ms} ms)"
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_memory(jobs: int) -> None:
    """Worker RSS with ``jobs`` in flight: the simulator holds every call for
    10 s, so all jobs sit in the worker at once."""
    with Scenario(10_000, worker_concurrency=jobs) as sc:
        pid = sc.stack.procs["worker#0"].pid
        idle = rss_mb(pid)
        asyncio.run(submit_all(sc.port, sc.key, jobs))
        peak = idle
        deadline = time.monotonic() + 60
        done = False
        while time.monotonic() < deadline and not done:
            peak = max(peak, rss_mb(pid))
            http_usage = asyncio.run(usage(sc.port, sc.key))
            done = http_usage["reserved"] == 0
            time.sleep(0.2)
    print(f"worker memory: RSS {idle:.0f} MB idle, {peak:.0f} MB peak with {jobs} jobs in flight")


async def usage(port: int, key: str) -> dict:
    http = Http(port, key)
    await http.open()
    _, body = await http.request("GET", "/api/v1/usage")
    await http.close()
    return json.loads(body)


def bench_storage(url: str, n: int = 500) -> None:
    """CPU per Tasks operation, domain and storage only (no gRPC), one at a time."""
    import resource

    from services.tasks.domain import models as m
    from services.tasks.domain.budget import BudgetPolicy
    from services.tasks.domain.jobs import JobPolicy, JobService
    from services.tasks.domain.users import UserService
    from services.tasks.storage.repository import Store

    class Accept:
        async def dispatch(self, *args: object) -> None:
            return None

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def measure() -> dict[str, float]:
        store = Store(url)
        await store.open()
        users = UserService(store)
        user, key = await users.create(f"bench-{uuid.uuid4().hex[:8]}")
        jobs = JobService(store, Accept(), JobPolicy(BudgetPolicy(86_400, 10**12, 2500), 900))
        draft = m.TaskDraft("Write Report", None, "work", "low", 1, "r", ["A b", "C d", "E f"])
        ids: list[str] = []
        out = {}
        steps = {
            "authenticate": lambda i: users.authenticate(key),
            "create": lambda i: jobs.create(user.id, f"task {i}"),
            "start": lambda i: jobs.start(ids[i]),
            "complete": lambda i: jobs.complete(ids[i], draft, 100),
        }
        for name, step in steps.items():
            start = cpu()
            for i in range(n):
                result = await step(i)
                if name == "create":
                    ids.append(result.id)
            out[name] = (cpu() - start) / n * 1000
        await store.close()
        return out

    figures = asyncio.run(measure())
    print(
        f"tasks storage on {url.split('+')[0]} (CPU ms per operation): "
        + ", ".join(f"{k} {v:.2f}" for k, v in figures.items())
        + f"; total {sum(figures.values()):.2f}"
    )


def bench_capability_latency(latency_ms: int, samples: int) -> None:
    """The capability alone against the simulator: the two LLM calls run
    concurrently (as shipped) versus one after the other (the earlier design),
    so the saving is shown with everything else equal."""
    import openai

    from taskmesh.capabilities.parse_task import handler
    from taskmesh.capabilities.parse_task.config import default_config, effective_config
    from taskmesh.jobs.v1 import jobs_pb2
    from taskmesh.llm_sim import SimOptions, SimServer

    async def measure() -> tuple[float, float]:
        async with SimServer(SimOptions(latency_ms=latency_ms), port=0) as sim:
            client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0)
            task_input = jobs_pb2.ParseTaskInput(
                natural_language="Submit Q2 report by next Friday", config=default_config()
            )
            task_input.reference_time.GetCurrentTime()
            concurrent, sequential = [], []
            for _ in range(samples):
                start = time.perf_counter()
                await handler.run_parse_task(client, "sim", task_input)
                concurrent.append(time.perf_counter() - start)
                run = handler._Run(client, "sim", None)
                start = time.perf_counter()
                await handler._core(run, task_input, effective_config(task_input.config), "v1")
                await handler._subtasks(run, task_input, "v1")
                sequential.append(time.perf_counter() - start)
            await client.close()
            return statistics.median(sequential), statistics.median(concurrent)

    before, after = asyncio.run(measure())
    print(
        f"parse-task at {latency_ms} ms per LLM call (median of {samples}): "
        f"sequential calls {before * 1000:.0f} ms, concurrent calls {after * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--accept-seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"taskmesh benchmarks on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        bench_storage(f"sqlite+aiosqlite:///{tmp}/storage.db")
    bench_accept(args.accept_seconds, args.runs)
    for latency in (0, 200):
        bench_end_to_end(latency, args.jobs, args.runs)
    bench_capability_latency(1000, 5)
    bench_latency(1000, 5)
    bench_memory(1000)


if __name__ == "__main__":
    main()
