"""``taskmesh eval``: the cases against an endpoint (here the simulator), a table, a JSON
report, and a comparison of two reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launcher.main import main
from llm_sim import SimOptions, SimServer
from taskmesh.evals.cases import ALL_CASES, MULTILINGUAL
from taskmesh.metrics import parse_task_runs


@pytest.fixture(autouse=True)
def _no_real_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_RESPONSE_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def _run(argv: list[str]) -> int:
    # The CLI runs its own event loop, as it does from a shell.
    return main(argv)


def test_eval_on_the_simulator_passes_every_case_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim.json"
    assert _run(["eval", "--out", str(out), "--min-pass", "1"]) == 0
    table = capsys.readouterr().out
    assert f"{len(ALL_CASES)}/{len(ALL_CASES)} cases passed" in table
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["endpoint"] == "simulator" and report["prompt_version"] == "v2"
    assert report["summary"]["passed"] == report["summary"]["cases"] == len(ALL_CASES)
    languages = {row["language"] for row in report["cases"]}
    assert {"en", "es", "fr", "de", "zh", "ja", "th", "ko", "ar", "ru"} <= languages
    row = next(r for r in report["cases"] if r["id"] == "zh-report")
    assert row["answer"]["dueTime"] == "2024-01-26T00:00:00Z"
    assert row["usage"]["llmCalls"] == 2 and all(c["passed"] for c in row["checks"])


async def test_eval_against_a_given_base_url_reports_failures_per_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An endpoint that refuses everything: every case fails, with the endpoint's reason.
    async with SimServer(SimOptions(reject_400="model 'x' not found"), port=0) as server:
        import asyncio

        code = await asyncio.to_thread(
            _run,
            [
                "eval",
                "--base-url",
                server.base_url,
                "--model",
                "x",
                "--cases",
                ",".join(c.id for c in MULTILINGUAL[:2]),
                "--out",
                str(tmp_path / "bad.json"),
                "--min-pass",
                "0.5",
            ],
        )
    assert code == 1
    table = capsys.readouterr().out
    assert "0/2 cases passed" in table and "LLMRejectedError: model 'x' not found" in table


def test_compare_tabulates_two_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert _run(["eval", "--cases", "bill-tomorrow,zh-bill", "--out", str(a)]) == 0
    report = json.loads(a.read_text(encoding="utf-8"))
    report["prompt_version"] = "v1"
    report["cases"][1]["passed"] = False
    report["summary"]["passed"] = 1
    a.write_text(json.dumps(report))
    assert _run(["eval", "--cases", "bill-tomorrow,zh-bill", "--out", str(b)]) == 0
    capsys.readouterr()
    assert _run(["eval", "--compare", str(a), str(b)]) == 0
    table = capsys.readouterr().out
    assert "A: taskmesh-sim / v1" in table and "B: taskmesh-sim / v2" in table
    assert "zh-bill" in table and "fixed" in table
    assert "1 fixed, 0 broken" in table


def test_compare_refuses_unreadable_reports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert _run(["eval", "--compare", str(bad), str(bad)]) == 1


def test_runs_are_counted_by_model_prompt_version_and_outcome() -> None:
    before = parse_task_runs.labels("taskmesh-sim", "v2", "ok")._value.get()
    assert _run(["eval", "--cases", "bill-tomorrow"]) == 0
    assert parse_task_runs.labels("taskmesh-sim", "v2", "ok")._value.get() == before + 1
