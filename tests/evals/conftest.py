from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import pytest

from llm_sim import SimOptions, SimServer
from taskmesh.capabilities.parse_task import validate_input
from taskmesh.jobs.v1 import jobs_pb2


def _load_cases() -> ModuleType:
    # Loaded by path under a name of its own: a bare "cases" module could collide with
    # another test folder's.
    name = "taskmesh_eval_cases"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("cases.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cases = _load_cases()


@dataclass(frozen=True)
class EvalRow:
    endpoint: str
    case: str
    checks: list[tuple[str, bool]]

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.checks)


_ROWS = pytest.StashKey[list[EvalRow]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "eval_case" in metafunc.fixturenames:
        metafunc.parametrize("eval_case", cases.ALL_CASES, ids=[c.id for c in cases.ALL_CASES])


@pytest.fixture
def eval_record(
    request: pytest.FixtureRequest, endpoint: str
) -> Callable[[str, list[tuple[str, bool]]], None]:
    """Adds one row to the evaluation table printed at the end of the run."""
    rows = request.config.stash.setdefault(_ROWS, [])

    def record(case_id: str, checks: list[tuple[str, bool]]) -> None:
        rows.append(EvalRow(endpoint, case_id, checks))

    return record


@pytest.fixture
def eval_input(eval_case: Any) -> jobs_pb2.ParseTaskInput:
    """The case's sentence as the AI service would queue it, with the clock frozen."""
    msg = jobs_pb2.ParseTaskInput(natural_language=eval_case.text)
    msg.reference_time.FromDatetime(cases.FROZEN_NOW)
    return validate_input(msg)


def real_endpoint_reason() -> str | None:
    """Why the real-endpoint variant is skipped, or None when it runs."""
    if not os.environ.get("OPENAI_API_KEY"):
        return "OPENAI_API_KEY is not set"
    if os.environ.get("TASKMESH_EVAL_REAL") != "1":
        return "set TASKMESH_EVAL_REAL=1 to evaluate against the real endpoint"
    return None


@pytest.fixture
async def eval_llm(endpoint: str) -> AsyncIterator[tuple[openai.AsyncOpenAI, str]]:
    """A client and model name for the endpoint under evaluation."""
    if endpoint == "sim":
        async with SimServer(SimOptions(), port=0) as server:
            client = openai.AsyncOpenAI(
                base_url=server.base_url, api_key="sim", max_retries=0, timeout=30
            )
            async with client:
                yield client, "taskmesh-sim"
        return
    reason = real_endpoint_reason()
    if reason:
        pytest.skip(reason)
    client = openai.AsyncOpenAI(
        base_url=os.environ.get("OPENAI_BASE_URL") or None, max_retries=3, timeout=60
    )
    async with client:
        yield client, os.environ.get("OPENAI_MODEL") or "gpt-4.1-mini"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(_ROWS, [])
    if not rows:
        return
    rows = sorted(rows, key=lambda r: r.endpoint)  # stable: cases keep their order
    width = max(len(r.case) for r in rows)
    terminalreporter.section("parse-task evaluation")
    terminalreporter.write_line(
        f"{'endpoint':<8}  {'case':<{width}}  checks  result  failed checks"
    )
    for row in rows:
        passed = sum(ok for _, ok in row.checks)
        failed = ", ".join(name for name, ok in row.checks if not ok)
        verdict = "pass" if row.passed else "FAIL"
        terminalreporter.write_line(
            f"{row.endpoint:<8}  {row.case:<{width}}  {passed:>2}/{len(row.checks):<3}  "
            f"{verdict:<6}  {failed}".rstrip()
        )
    for endpoint in sorted({r.endpoint for r in rows}):
        mine = [r for r in rows if r.endpoint == endpoint]
        good = sum(r.passed for r in mine)
        terminalreporter.write_line(f"{endpoint}: {good}/{len(mine)} cases passed")
