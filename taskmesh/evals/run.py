"""Runs the evaluation cases against one endpoint and builds the JSON report; compares two
reports. Used by ``taskmesh eval`` (launcher/evaluate.py) and the eval tests.

Report (``REPORT_VERSION`` 1)::

    {"report_version": 1, "model": str, "prompt_version": str, "response_format": str,
     "endpoint": str, "started_at": ISO 8601, "seconds": float,
     "summary": {"cases": int, "passed": int, "checks": int, "checks_passed": int},
     "cases": [{"id", "language", "text", "outcome": "task"|"vague"|"error", "passed": bool,
                "error": str|null, "checks": [{"name", "passed"}], "answer": {...}|null,
                "usage": {"input_tokens", "output_tokens", "llm_calls"}, "seconds": float}]}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import openai
from google.protobuf.json_format import MessageToDict

from taskmesh.capabilities.errors import CapabilityError, UsageMeter
from taskmesh.capabilities.llm_client import CallOptions
from taskmesh.capabilities.parse_task import run_parse_task, validate_input
from taskmesh.jobs.v1 import jobs_pb2

from .cases import FROZEN_NOW, EvalCase

REPORT_VERSION = 1


def _checks(case: EvalCase, output: Any, vague: Any) -> list[tuple[str, bool]]:
    if case.vague:
        return [
            ("vague", vague is not None),
            ("1-3 suggestions", vague is not None and 1 <= len(vague.suggestions) <= 3),
        ]
    checks = [("task", output is not None)]
    checks.extend((name, output is not None and bool(check(output))) for name, check in case.checks)
    return checks


async def run_case(
    client: openai.AsyncOpenAI,
    model: str,
    case: EvalCase,
    prompt_version: str,
    options: CallOptions | None = None,
) -> dict[str, Any]:
    """One case's row of the report; never raises for an endpoint's or a model's failure."""
    msg = jobs_pb2.ParseTaskInput(natural_language=case.text)
    msg.reference_time.FromDatetime(FROZEN_NOW)
    meter = UsageMeter()
    started = time.perf_counter()
    output = vague = None
    error: str | None = None
    try:
        result = await run_parse_task(
            client, model, validate_input(msg), prompt_version, meter=meter, options=options
        )
        output, vague = result.output, result.vague
    except CapabilityError as exc:
        detail = getattr(exc, "detail", "") or "; ".join(getattr(exc, "errors", [])) or str(exc)
        error = f"{type(exc).__name__}: {detail}"[:300]
    checks = [] if error else _checks(case, output, vague)
    if error:
        checks = [("answered", False)]
    answer = output if output is not None else vague
    return {
        "id": case.id,
        "language": case.language,
        "text": case.text,
        "outcome": "error" if error else ("vague" if vague is not None else "task"),
        "passed": all(ok for _, ok in checks),
        "error": error,
        "checks": [{"name": name, "passed": ok} for name, ok in checks],
        "answer": MessageToDict(answer) if answer is not None else None,
        "usage": MessageToDict(meter.usage(), always_print_fields_with_no_presence=True),
        "estimated_calls": meter.estimated_calls,
        "seconds": round(time.perf_counter() - started, 3),
    }


async def run_eval(
    client: openai.AsyncOpenAI,
    model: str,
    cases: Sequence[EvalCase],
    *,
    prompt_version: str = "v2",
    options: CallOptions | None = None,
    endpoint: str = "",
    concurrency: int = 4,
) -> dict[str, Any]:
    """Runs ``cases`` (at most ``concurrency`` at once) and returns the report (see module)."""
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(case: EvalCase) -> dict[str, Any]:
        async with gate:
            return await run_case(client, model, case, prompt_version, options)

    rows = await asyncio.gather(*(one(case) for case in cases))
    checks = [c for row in rows for c in row["checks"]]
    return {
        "report_version": REPORT_VERSION,
        "model": model,
        "prompt_version": prompt_version,
        "response_format": (options or CallOptions()).response_format,
        "endpoint": endpoint,
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "seconds": round(time.perf_counter() - started, 3),
        "summary": {
            "cases": len(rows),
            "passed": sum(row["passed"] for row in rows),
            "checks": len(checks),
            "checks_passed": sum(c["passed"] for c in checks),
        },
        "cases": list(rows),
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a table: one line per case, its checks and the failed ones."""
    rows = report["cases"]
    width = max([len(r["id"]) for r in rows] + [4])
    lines = [
        f"model {report['model']}  prompt {report['prompt_version']}  "
        f"response_format {report['response_format']}",
        f"{'case':<{width}}  lang  checks  result  failed checks",
    ]
    for row in rows:
        passed = sum(c["passed"] for c in row["checks"])
        failed = ", ".join(c["name"] for c in row["checks"] if not c["passed"])
        if row["error"]:
            failed = row["error"]
        verdict = "pass" if row["passed"] else "FAIL"
        lines.append(
            f"{row['id']:<{width}}  {row['language']:<4}  {passed:>2}/{len(row['checks']):<3}  "
            f"{verdict:<6}  {failed}".rstrip()
        )
    s = report["summary"]
    lines.append(
        f"{s['passed']}/{s['cases']} cases passed, {s['checks_passed']}/{s['checks']} checks"
    )
    return "\n".join(lines)


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two reports side by side (a prompt or model change): per case A, B and what changed."""
    by_id_a = {r["id"]: r for r in a["cases"]}
    by_id_b = {r["id"]: r for r in b["cases"]}
    ids = list(dict.fromkeys([*by_id_a, *by_id_b]))
    width = max([len(i) for i in ids] + [4])

    def label(report: dict[str, Any]) -> str:
        return f"{report['model']} / {report['prompt_version']}"

    def verdict(row: dict[str, Any] | None) -> str:
        if row is None:
            return "-"
        passed = sum(c["passed"] for c in row["checks"])
        return f"{'pass' if row['passed'] else 'FAIL'} {passed}/{len(row['checks'])}"

    lines = [f"A: {label(a)}", f"B: {label(b)}", f"{'case':<{width}}  {'A':<10}  {'B':<10}  change"]
    better = worse = 0
    for case_id in ids:
        ra, rb = by_id_a.get(case_id), by_id_b.get(case_id)
        change = ""
        if ra is not None and rb is not None and ra["passed"] != rb["passed"]:
            change = "fixed" if rb["passed"] else "broken"
            better += rb["passed"]
            worse += ra["passed"]
        lines.append(f"{case_id:<{width}}  {verdict(ra):<10}  {verdict(rb):<10}  {change}".rstrip())
    sa, sb = a["summary"], b["summary"]
    lines.append(
        f"A {sa['passed']}/{sa['cases']} cases, B {sb['passed']}/{sb['cases']} cases: "
        f"{better} fixed, {worse} broken"
    )
    return "\n".join(lines)
