"""Level-1 evaluation of parse-task: the domain's cases, deterministic checks, against the
simulator always and against a real endpoint on request (OPENAI_API_KEY and
TASKMESH_EVAL_REAL=1; OPENAI_BASE_URL and OPENAI_MODEL pick it). The table of results is
printed at the end of the run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from taskmesh.capabilities.parse_task import ParseTaskError, run_parse_task
from taskmesh.jobs.v1 import jobs_pb2


@pytest.mark.parametrize("endpoint", ["sim", "real"])
async def test_parse_task_eval(
    endpoint: str,
    eval_case: Any,
    eval_input: jobs_pb2.ParseTaskInput,
    eval_llm: tuple[openai.AsyncOpenAI, str],
    eval_record: Callable[[str, list[tuple[str, bool]]], None],
) -> None:
    client, model = eval_llm
    try:
        result = await run_parse_task(client, model, eval_input)
    except ParseTaskError as exc:
        eval_record(eval_case.id, [(f"no {type(exc).__name__}", False)])
        pytest.fail(f"{eval_case.id}: {type(exc).__name__}: {exc}")

    checks: list[tuple[str, bool]] = []
    if eval_case.vague:
        vague = result.vague
        checks.append(("vague", vague is not None))
        checks.append(("1-3 suggestions", vague is not None and 1 <= len(vague.suggestions) <= 3))
    else:
        output = result.output
        checks.append(("task", output is not None))
        checks.extend(
            (name, output is not None and check(output)) for name, check in eval_case.checks
        )
    usage = result.usage
    checks.append(("usage counted", usage.llm_calls >= 2 and usage.input_tokens > 0))
    eval_record(eval_case.id, checks)

    failed = [name for name, ok in checks if not ok]
    detail = result.output if result.output is not None else result.vague
    assert not failed, f"{eval_case.id}: failed {failed}; answer: {detail}"
