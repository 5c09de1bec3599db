"""The whole system as replicas on one PostgreSQL, one RabbitMQ queue and one
Redis (issue 16): 2 gateways, 2 Tasks, 2 AI, 2 workers, each on ports of its own,
wired across the replicas so every hop can land on the other one:

    gateway A → tasks A → ai A        worker A → tasks B
    gateway B → tasks B → ai B        worker B → tasks A

Jobs are submitted through both gateways and each is watched over SSE through
the *other* gateway. With every worker's calls held at the simulator's gate (the
mid-run state, held until the test opens the gate), tasks B and worker B are
killed with SIGKILL; tasks B is started again. Watchers on gateway B lose their
stream when tasks B dies: they wait for gateway B's /readyz, then resume with
Last-Event-ID (counted in ``reconnects``; none is dropped from the checks).

Ends with: every accepted job terminal, every watcher saw its job's terminal
event, one task per succeeded job, the ledger balanced, and the request-rate
bucket shared by both Tasks replicas through Redis (a burst through both
gateways gets exactly one bucket's worth)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from launcher.stack import LocalStack
from tests.support.broker import delete_queues
from tests.support.checks import TERMINAL, assert_exactly_once, assert_ledger_balanced, sentences
from tests.support.machine import free_port
from tests.support.sim import sim_gate, sim_state
from tests.support.stack import Stack, stack_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.faults,
    pytest.mark.timeout(300),
]

JOBS = 200
#: Prefetch of each worker: with the gate closed each holds this many jobs.
CONCURRENCY = 20
#: parse_task makes its two LLM calls at once (core and subtasks).
CALLS_PER_JOB = 2
#: The request bucket of every user; refill is negligible, so a burst gets exactly this.
BUCKET = 1000
BURST = 1250
READ_TIMEOUT_S = 90.0


@dataclass
class Watch:
    job_id: str
    gateway: str
    events: list[str] = field(default_factory=list)
    #: The ``id`` of each event received, across reconnections.
    ids: list[int] = field(default_factory=list)
    terminal: dict | None = None
    reconnects: int = 0
    problem: str | None = None


class Replicas:
    """One LocalStack per process, so each gets its own addresses."""

    def __init__(self, base: dict[str, str], log_dir: Path) -> None:
        self.base = base
        self.log_dir = log_dir
        self.stacks: dict[str, LocalStack] = {}
        #: Killed and not started again.
        self.dead: set[str] = set()
        p = {name: free_port() for name in ("ta", "tb", "aa", "ab", "ga", "gb")}
        self.tasks = {"a": f"127.0.0.1:{p['ta']}", "b": f"127.0.0.1:{p['tb']}"}
        self.ai = {"a": f"127.0.0.1:{p['aa']}", "b": f"127.0.0.1:{p['ab']}"}
        self.gateway_port = {"a": str(p["ga"]), "b": str(p["gb"])}
        self.gateway = {r: f"http://127.0.0.1:{port}" for r, port in self.gateway_port.items()}
        other = {"a": "b", "b": "a"}
        self.env: dict[str, dict[str, str]] = {"llm-sim": {}}
        for r in ("a", "b"):
            self.env[f"tasks#{r}"] = {"TASKS_GRPC_ADDR": self.tasks[r], "AI_GRPC_ADDR": self.ai[r]}
            self.env[f"ai#{r}"] = {"AI_GRPC_ADDR": self.ai[r]}
            self.env[f"worker#{r}"] = {"TASKS_GRPC_ADDR": self.tasks[other[r]]}
            self.env[f"gateway#{r}"] = {
                "GATEWAY_PORT": self.gateway_port[r],
                "TASKS_GRPC_ADDR": self.tasks[r],
                "AI_GRPC_ADDR": self.ai[r],
            }

    def start(self, name: str) -> None:
        stack = self.stacks.get(name)
        if stack is None:
            stack = LocalStack(
                {**self.base, **self.env[name]},
                [name],
                log_dir=self.log_dir,
                sim_args=["--hold"] if name == "llm-sim" else None,
            )
            self.stacks[name] = stack
        stack.start(name)
        self.dead.discard(name)

    def kill(self, name: str) -> None:
        self.stacks[name].signal(name, signal.SIGKILL)
        assert self.stacks[name].wait(name, 10) == -signal.SIGKILL
        self.dead.add(name)

    def wait_ready(self, timeout: float) -> None:
        for r in ("a", "b"):
            self.stacks[f"gateway#{r}"].wait_ready(self.gateway[r], timeout)

    def check_alive(self) -> None:
        for name, stack in self.stacks.items():
            if name not in self.dead:
                stack.check_alive()

    def stop(self) -> dict[str, int]:
        codes: dict[str, int] = {}
        # Front to back, so nothing is left calling a stopped service.
        order = ["gateway#a", "gateway#b", "worker#a", "worker#b", "ai#a", "ai#b"]
        order += ["tasks#a", "tasks#b", "llm-sim"]
        for name in order:
            if name in self.stacks:
                codes.update(self.stacks[name].stop(15))
        return codes


@pytest.fixture
def replicas(tmp_path, rabbitmq_url, queue_name, empty_postgres, redis_url):
    base = {
        **stack_env(tmp_path, rabbitmq_url, queue_name),
        "DATABASE_URL": empty_postgres,
        "REDIS_URL": redis_url,
        "TOKEN_WINDOW_LIMIT": "100000000",
        "RATE_LIMIT_BUCKET_SIZE": str(BUCKET),
        "RATE_LIMIT_REFILL_PER_S": "0.001",
        "WORKER_CONCURRENCY": str(CONCURRENCY),
    }
    system = Replicas(base, tmp_path / "logs")
    try:
        for name in ["llm-sim", "tasks#a", "tasks#b", "ai#a", "ai#b"]:
            system.start(name)
        for name in ["worker#a", "worker#b", "gateway#a", "gateway#b"]:
            system.start(name)
        system.wait_ready(120)
        yield system
    finally:
        codes = system.stop()
        asyncio.run(delete_queues(rabbitmq_url, queue_name))
    unclean = {name: code for name, code in codes.items() if code not in (0, -9)}
    assert not unclean, f"unclean exit: {unclean}"


async def _wait_ready(http: httpx.AsyncClient, gateway: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if (await http.get(f"{gateway}/readyz", timeout=2)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{gateway} not ready")


async def _watch(http: httpx.AsyncClient, watch: Watch, key: str, deadline: float) -> None:
    """Follows one job's events until its terminal one, resuming with Last-Event-ID
    whenever the stream breaks (as an EventSource does)."""
    last_id: str | None = None
    while watch.terminal is None and time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            url = f"{watch.gateway}/api/v1/jobs/{watch.job_id}/events"
            timeout = httpx.Timeout(10, read=READ_TIMEOUT_S)
            async with http.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code == 204:
                    watch.problem = "204 before the terminal event was seen"
                    return
                if response.status_code != 200:
                    await response.aread()
                    if response.status_code not in (502, 503, 504):
                        watch.problem = f"HTTP {response.status_code}: {response.text[:200]}"
                        return
                else:
                    event: dict[str, str] = {}
                    async for line in response.aiter_lines():
                        if line:
                            name, _, value = line.partition(":")
                            event[name] = value.lstrip()
                            continue
                        if "data" in event:
                            last_id = event.get("id", last_id)
                            watch.ids.append(int(event["id"]))
                            watch.events.append(event.get("event", ""))
                            if event.get("event") in TERMINAL:
                                watch.terminal = json.loads(event["data"])
                                return
                        event = {}
        except httpx.HTTPError:
            pass
        watch.reconnects += 1
        await _wait_ready(http, watch.gateway, deadline)
    if watch.terminal is None and watch.problem is None:
        watch.problem = "no terminal event before the deadline"


async def _submit(http: httpx.AsyncClient, gateway: str, key: str, text: str) -> str | None:
    response = await http.post(
        f"{gateway}/api/v1/tasks",
        json={"naturalLanguage": text},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    if response.status_code == 202:
        return response.json()["jobId"]
    assert response.status_code in (429, 503), response.text
    return None


def _create_user(env: dict[str, str], name: str) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "launcher", "users", "create", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


async def test_replicas_on_postgresql_survive_a_killed_tasks_replica_and_worker(replicas):
    key = replicas.base["TASKMESH_DEV_API_KEY"]
    started = time.monotonic()
    deadline = started + 240
    limits = httpx.Limits(max_connections=JOBS + 50, max_keepalive_connections=JOBS + 50)
    async with httpx.AsyncClient(limits=limits) as http:
        # --- submit through both gateways; watch each job through the other one -----------
        watches: list[Watch] = []
        watchers: list[asyncio.Task[None]] = []
        sides = [("a", "b"), ("b", "a")]
        for i, text in enumerate(sentences(JOBS, "Renew the team's cloud contract")):
            via, watched_via = sides[i % 2]
            job_id = await _submit(http, replicas.gateway[via], key, text)
            if job_id is None:
                continue
            watch = Watch(job_id, replicas.gateway[watched_via])
            watches.append(watch)
            watchers.append(asyncio.create_task(_watch(http, watch, key, deadline)))
        accepted = len(watches)
        assert accepted >= JOBS * 0.95, f"only {accepted} of {JOBS} accepted"

        # --- mid-run: every worker full, every call held at the gate ---------------------
        sim = SimpleNamespace(env=replicas.base)  # what sim_state/sim_gate read
        held = 2 * CONCURRENCY * CALLS_PER_JOB
        async with asyncio.timeout(120):
            while (await asyncio.to_thread(sim_state, sim))["held"] < held:
                await asyncio.sleep(0.2)

        # --- kill tasks B and worker B; start tasks B again ------------------------------
        killed_at = time.monotonic()
        await asyncio.to_thread(replicas.kill, "tasks#b")
        await asyncio.to_thread(replicas.kill, "worker#b")
        replicas.start("tasks#b")
        await _wait_ready(http, replicas.gateway["b"], deadline)
        recovered_s = time.monotonic() - killed_at
        await asyncio.to_thread(sim_gate, sim, open=True)
        gate_opened = time.monotonic()

        await asyncio.wait_for(asyncio.gather(*watchers), max(1, deadline - time.monotonic()))
        drained_s = time.monotonic() - gate_opened
        replicas.check_alive()

        # --- every watcher saw its job's terminal event ----------------------------------
        problems = [(w.job_id, w.gateway, w.problem, w.events) for w in watches if w.problem]
        assert not problems, problems[:5]
        # Resuming with Last-Event-ID replays nothing already seen.
        assert all(w.ids == sorted(set(w.ids)) for w in watches)
        final = {w.job_id: w.terminal for w in watches}
        assert all(job is not None and job["status"] in TERMINAL for job in final.values())
        statuses = {job["status"] for job in final.values()}  # type: ignore[index]
        reconnects = sum(w.reconnects for w in watches)
        watched_on_b = [w for w in watches if w.gateway == replicas.gateway["b"]]
        attempts = max(job["attempts"] for job in final.values())  # type: ignore[index]

        # --- Prefer: wait answers a job another replica completes -------------------------
        # Worker A reports to tasks B, so a job created (and awaited) on tasks A is
        # completed on tasks B: tasks A hears of it through the database.
        waited = await asyncio.gather(
            *(
                http.post(
                    f"{replicas.gateway['a']}/api/v1/tasks",
                    json={"naturalLanguage": text},
                    headers={"Authorization": f"Bearer {key}", "Prefer": "wait=25"},
                    timeout=60,
                )
                for text in sentences(4, "Book the venue for the offsite")
            )
        )
        assert [r.status_code for r in waited] == [201] * 4, [r.text for r in waited]
        final.update({r.json()["jobId"]: r.json() for r in waited})

        # --- the rate limit holds across replicas (shared through Redis) -----------------
        # Through replica A's Tasks service: operator commands call its AdminService.
        burst_key = await asyncio.to_thread(
            _create_user, {**replicas.base, **replicas.env["tasks#a"]}, "burst"
        )
        gateways = [replicas.gateway["a"], replicas.gateway["b"]]
        codes: list[int] = []
        for start in range(0, BURST, 50):
            batch = [
                http.get(
                    f"{gateways[i % 2]}/api/v1/usage",
                    headers={"Authorization": f"Bearer {burst_key}"},
                    timeout=30,
                )
                for i in range(start, min(start + 50, BURST))
            ]
            codes += [r.status_code for r in await asyncio.gather(*batch)]
        admitted = codes.count(200)

    print(
        f"\nreplicas: {accepted} jobs accepted of {JOBS}, final statuses {sorted(statuses)}, "
        f"max attempts {attempts}; kills: tasks#b and worker#b (SIGKILL) with "
        f"{held} LLM calls held; {len(watches)} SSE watchers ({len(watched_on_b)} through "
        f"gateway B, {reconnects} resumptions with Last-Event-ID); gateway B ready again "
        f"{recovered_s:.1f} s after the kill; all jobs terminal {drained_s:.1f} s after the "
        f"gate opened; rate limit: {admitted} of {BURST} burst requests through both gateways "
        f"admitted (bucket {BUCKET}); total {time.monotonic() - started:.1f} s"
    )
    assert statuses == {"succeeded"}, statuses
    assert attempts >= 2, "no job held by the killed worker was run again"
    assert admitted == BUCKET, f"{admitted} admitted: the bucket is not shared by the replicas"
    assert set(codes) == {200, 429}

    # The ledger check asks replica A's Tasks service (its AdminService).
    stack = Stack(
        None, replicas.gateway["a"], {**replicas.base, **replicas.env["tasks#a"]}, replicas.log_dir
    )
    with httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        assert_exactly_once(client, final)  # type: ignore[arg-type]
    assert_ledger_balanced(stack)
