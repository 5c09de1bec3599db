"""The comparison's text: medians, ratios taskmesh / peer, CPU by process, the
simulator (a stand-in for the LLM provider) in neither system's total."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench  # noqa: E402
from bench_peer.run import Burst  # noqa: E402

pytestmark = pytest.mark.bench


def rows(report: str) -> dict[str, list[str]]:
    return {line[:26].strip(): line[26:].split() for line in report.splitlines()[2:4]}


def test_comparison_prints_both_systems_side_by_side_with_the_ratios() -> None:
    args = bench.parse_args(["--only", "zero", "--jobs", "6", "--warmup", "0"])
    mine = [Burst(60.0, 6, {"tasks": 10.0, "worker#0": 8.0, "llm-sim": 1.0})]
    peer = [Burst(120.0, 6, {"worker#1": 3.0, "worker#2": 3.0, "llm-sim": 0.5})]
    report = bench.compare_report(mine, peer, args)
    assert rows(report)["jobs/s"] == ["60.0", "120.0", "0.50x"]
    assert rows(report)["CPU ms per job, total"] == ["18.00", "6.00", "3.00x"]
    assert "taskmesh CPU ms per job: tasks 10.00, worker#0 8.00\n" in report
    assert "peer CPU ms per job: worker#1 3.00, worker#2 3.00\n" in report


def test_figures_are_medians_over_the_runs_per_process_and_in_total() -> None:
    args = bench.parse_args(["--only", "zero"])
    mine = [
        Burst(50.0, 9, {"tasks": 10.0, "rabbitmq": 1.0}),
        Burst(70.0, 9, {"tasks": 30.0, "rabbitmq": 3.0}),
        Burst(60.0, 9, {"tasks": 20.0, "rabbitmq": 2.0}),
    ]
    peer = [Burst(30.0, 9, {"worker#1": 4.0}), Burst(10.0, 9, {"worker#1": 2.0})] + [
        Burst(20.0, 9, {"worker#1": 3.0})
    ]
    report = bench.compare_report(mine, peer, args)
    assert rows(report)["jobs/s"] == ["60.0", "20.0", "3.00x"]
    assert rows(report)["CPU ms per job, total"] == ["22.00", "3.00", "7.33x"]
    assert "taskmesh CPU ms per job: tasks 20.00, rabbitmq 2.00\n" in report
