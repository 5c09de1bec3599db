"""The benchmark harness works: taskmesh's and the peer's paths each settle a
handful of jobs under the profiler. No figure is asserted: this machine is shared, figures come from ``make bench``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.machine import require_service

pytest.importorskip("taskiq_aio_pika", reason="the bench extras are not installed (make bench)")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench  # noqa: E402
from bench_profile import Profiler  # noqa: E402

pytestmark = [pytest.mark.bench, pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(60)]

FEW = ["--runs", "1", "--jobs", "6", "--clients", "3", "--warmup", "0"]


@pytest.fixture
def rabbitmq() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672)


def test_taskmesh_path_settles_every_job_and_profiles_every_process(
    rabbitmq: None, tmp_path: Path
) -> None:
    prof = Profiler(tmp_path)
    with bench.Scenario(200) as sc:
        pids = {n: p.pid for n, p in sc.stack.procs.items() if n != "llm-sim"}
        with prof.recording(pids):
            burst = bench.taskmesh_burst(sc, 6, 3)
    assert burst.jobs == 6
    assert {"gateway", "tasks", "ai", "worker#0", "rabbitmq"} <= set(burst.cpu_ms)
    summary = prof.summary(6, top=3)
    for name in pids:
        assert f"  {name}: " in summary


def test_peer_path_settles_every_job_and_profiles_every_process(
    rabbitmq: None, tmp_path: Path
) -> None:
    prof = Profiler(tmp_path)
    args = bench.parse_args(["--only", "compare", *FEW])
    with bench.peer_scenario(args) as ps:
        burst = ps.burst(6, 3, around=prof.recording)
    assert burst.jobs == 6
    assert {"worker#1", "worker#2", "receiver", "producer", "rabbitmq"} <= set(burst.cpu_ms)
    summary = prof.summary(6, top=3)
    for name in ("worker#1", "worker#2", "receiver", "producer"):
        assert f"  {name}: " in summary
