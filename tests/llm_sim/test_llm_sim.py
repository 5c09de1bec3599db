"""The LLM simulator: protocol, deterministic answers, faults, options and CLI."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from llm_sim import SimOptions, SimServer
from llm_sim.dates import resolve
from llm_sim.engine import answer_core, read_core_prompt, read_sentence, subtasks_for
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.capabilities.parse_task.prompts import render_core, render_subtasks
from taskmesh.capabilities.parse_task.schema import (
    core_response_format,
    parse_core,
    parse_subtasks,
    subtasks_response_format,
)
from taskmesh.jobs.v1 import jobs_pb2

MONDAY = date(2024, 1, 15)
TEAM_EVENT = (
    "Plan and execute a company-wide team building event for 50 people next month "
    "with budget approval, venue booking, and activity coordination"
)
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def _core_body(text: str, config: jobs_pb2.ParseTaskConfig | None = None) -> dict[str, Any]:
    config = config or default_config()
    return {
        "model": "gpt-4.1-mini",
        "temperature": 0,
        "response_format": core_response_format(config),
        "messages": [
            {"role": "system", "content": render_core(config, NOW)},
            {"role": "user", "content": text},
        ],
    }


def _subtasks_body(text: str) -> dict[str, Any]:
    return {
        "model": "gpt-4.1-mini",
        "response_format": subtasks_response_format(),
        "messages": [
            {"role": "system", "content": render_subtasks()},
            {"role": "user", "content": text},
        ],
    }


async def _post(server: SimServer, body: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{server.base_url}/chat/completions", json=body)


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pay electricity bill tomorrow", date(2024, 1, 16)),
        ("Call mom today", date(2024, 1, 15)),
        ("Finish it the day after tomorrow", date(2024, 1, 17)),
        ("Submit Q2 report by next Friday", date(2024, 1, 19)),
        ("Submit Q2 report by Friday", date(2024, 1, 19)),
        ("Gym on Monday", date(2024, 1, 22)),
        ("Dinner next Sunday", date(2024, 1, 21)),
        ("Renew passport next week", date(2024, 1, 26)),
        ("Team offsite next month", date(2024, 2, 15)),
        ("Send invoice in 3 days", date(2024, 1, 18)),
        ("Send invoice in two weeks", date(2024, 1, 29)),
        ("Close the books by end of month", date(2024, 1, 31)),
        ("Wrap up by the end of the week", date(2024, 1, 19)),
        ("File taxes by April 15th", date(2024, 4, 15)),
        ("Pay rent on 2024-02-01", date(2024, 2, 1)),
        ("Plan something soon", None),
        ("Clean the garage eventually", None),
        ("Read a book sometime", None),
        ("Buy groceries", None),
    ],
)
def test_dates(text: str, expected: date | None) -> None:
    assert resolve(text, MONDAY).day == expected


def test_next_month_in_december_rolls_the_year() -> None:
    assert resolve("Holiday party next month", date(2024, 12, 3)).day == date(2025, 1, 15)


# --- engine -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Pay electricity bill tomorrow", "finance"),
        ("File my taxes", "finance"),
        ("Book dentist appointment", "health"),
        ("Go to the gym", "health"),
        ("Prepare slides for the client meeting", "work"),
        ("Buy groceries", "errand"),
        ("Pick up dry cleaning", "errand"),
        ("Call grandma", "personal"),
    ],
)
def test_categories_by_keyword(text: str, category: str) -> None:
    config = read_core_prompt(render_core(default_config(), NOW))
    result = answer_core(text, config)
    assert result["task"]["category"] == category


def test_custom_config_from_the_prompt() -> None:
    custom = jobs_pb2.ParseTaskConfig(
        categories=["home", "job"],
        priority_levels=[
            jobs_pb2.PriorityLevel(name="whenever", min_score=0, max_score=4),
            jobs_pb2.PriorityLevel(name="now", min_score=5, max_score=10),
        ],
    )
    config = read_core_prompt(render_core(custom, NOW))
    assert config.now == NOW
    assert config.categories == ["home", "job"]
    assert config.levels == [("whenever", 0, 4), ("now", 5, 10)]
    task = answer_core("Urgent: fix the production outage immediately", config)["task"]
    assert task["category"] == "home"  # nothing matches a custom name, so the first one
    assert task["priority"]["level"] == "now"
    assert 5 <= task["priority"]["score"] <= 10


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Pay electricity bill tomorrow", "Pay Electricity Bill"),
        ("please remember to call the bank on Friday", "Call the Bank"),
        ("Urgent: fix the production outage immediately", "Fix the Production Outage"),
        (
            TEAM_EVENT,
            "Plan and Execute Company-Wide Team Building Event",
        ),
        ("Have lunch with Sarah on Wednesday", "Have Lunch with Sarah"),
    ],
)
def test_titles(text: str, title: str) -> None:
    config = read_core_prompt(render_core(default_config(), NOW))
    assert answer_core(text, config)["task"]["title"] == title


@pytest.mark.parametrize("text", ["Do stuff", "Plan something soon", "Fix it", "Groceries"])
def test_vague_inputs(text: str) -> None:
    result = answer_core(text, read_core_prompt(render_core(default_config(), NOW)))
    assert result["result"] == "vague" and result["task"] is None
    assert result["error"]["reason"]
    assert 1 <= len(result["error"]["suggestions"]) <= 3


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Buy groceries", None),
        ("Fix broken laptop screen", None),
        ("Book dentist appointment", None),
        ("Plan vacation", (3, 7)),
        ("Organize party", (3, 7)),
        ("Submit Q2 report by next Friday", (4, 4)),
        (
            TEAM_EVENT,
            (5, 7),
        ),
    ],
)
def test_subtasks(text: str, count: tuple[int, int] | None) -> None:
    steps = subtasks_for(read_sentence(text, MONDAY))
    if count is None:
        assert steps is None
    else:
        assert steps is not None and count[0] <= len(steps) <= count[1]
        # Whatever the simulator says must pass the handler's own checks.
        assert parse_subtasks(json.dumps({"subtasks": steps})) == steps


# --- protocol ---------------------------------------------------------------------------------


async def test_core_answer_passes_validation_and_reports_usage() -> None:
    body = _core_body("Pay electricity bill tomorrow")
    async with SimServer(SimOptions(), port=0) as server:
        response = await _post(server, body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "gpt-4.1-mini"
    content = data["choices"][0]["message"]["content"]
    out = parse_core(content, default_config())
    assert isinstance(out, jobs_pb2.ParseTaskOutput)
    assert out.due_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 16, tzinfo=UTC)
    chars = sum(len(m["content"]) for m in body["messages"])
    assert data["usage"] == {
        "prompt_tokens": math.ceil(chars / 4),
        "completion_tokens": math.ceil(len(content) / 4),
        "total_tokens": math.ceil(chars / 4) + math.ceil(len(content) / 4),
    }
    assert server.stats["calls"] == {"core": 1}


async def test_answers_are_deterministic() -> None:
    async with SimServer(SimOptions(), port=0) as server:
        first = await _post(server, _subtasks_body("Organize party"))
        second = await _post(server, _subtasks_body("Organize party"))
    a, b = (r.json()["choices"][0]["message"]["content"] for r in (first, second))
    assert a == b
    assert len(json.loads(a)["subtasks"]) >= 3


async def test_prompts_recognised_without_response_format() -> None:
    core, subtasks = _core_body("Buy groceries"), _subtasks_body("Plan vacation")
    del core["response_format"], subtasks["response_format"]
    async with SimServer(SimOptions(), port=0) as server:
        core_content = (await _post(server, core)).json()["choices"][0]["message"]["content"]
        sub_content = (await _post(server, subtasks)).json()["choices"][0]["message"]["content"]
        stats = server.stats
    assert json.loads(core_content)["task"]["title"] == "Buy Groceries"
    assert json.loads(sub_content)["subtasks"]
    assert stats["calls"] == {"core": 1, "subtasks": 1}


async def test_models_and_bad_requests() -> None:
    async with SimServer(SimOptions(), port=0) as server, httpx.AsyncClient() as http:
        models = await http.get(f"{server.base_url}/models")
        not_json = await http.post(f"{server.base_url}/chat/completions", content=b"{nope")
        no_messages = await http.post(f"{server.base_url}/chat/completions", json={"model": "m"})
    assert models.status_code == 200
    assert models.json()["data"][0]["id"] == "taskmesh-sim"
    for response in (not_json, no_messages):
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_fault_429_looks_like_openai() -> None:
    async with SimServer(SimOptions(rate_429=1.0), port=0) as server:
        response = await _post(server, _core_body("Buy groceries"))
        stats = server.stats
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert stats["faults"] == {"429": 1}
    assert stats["tokens"] == {"prompt": 0, "completion": 0}


async def test_fault_500_and_malformed() -> None:
    async with SimServer(SimOptions(rate_500=1.0), port=0) as server:
        failed = await _post(server, _core_body("Buy groceries"))
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"

    async with SimServer(SimOptions(rate_malformed=1.0), port=0) as server:
        malformed = await _post(server, _core_body("Buy groceries"))
    assert malformed.status_code == 200
    content = malformed.json()["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    assert malformed.json()["usage"]["completion_tokens"] >= 1


async def test_hanging_call_is_released_by_stop() -> None:
    server = SimServer(SimOptions(rate_timeout=1.0, timeout_hang_s=60), port=0)
    await server.start()
    async with httpx.AsyncClient(timeout=30) as http:
        pending = asyncio.create_task(
            http.post(f"{server.base_url}/chat/completions", json=_core_body("Buy groceries"))
        )
        while server.stats["in_flight"] == 0:
            await asyncio.sleep(0.01)
        await server.stop()
        try:
            response = await pending
        except httpx.HTTPError:
            pass
        else:
            assert response.status_code == 504
    assert server.stats["faults"] == {"timeout": 1}
    await server.stop()  # a second stop is harmless


async def test_fault_kinds_and_seeded_fault_sequence() -> None:
    options = SimOptions(rate_500=0.5, seed=7, fault_kinds={"core"})
    statuses: list[list[int]] = []
    for _ in range(2):
        async with SimServer(options, port=0) as server:
            run = []
            for _ in range(12):
                run.append((await _post(server, _core_body("Buy groceries"))).status_code)
                sub = await _post(server, _subtasks_body("Plan vacation"))
                assert sub.status_code == 200
            statuses.append(run)
    assert statuses[0] == statuses[1]
    assert {500, 200} == set(statuses[0])


# --- options and CLI --------------------------------------------------------------------------


def test_options_from_env() -> None:
    env = {
        "LLM_SIM_LATENCY_MS": "200",
        "LLM_SIM_JITTER_MS": "20.5",
        "LLM_SIM_RATE_429": "0.1",
        "LLM_SIM_RATE_500": "0.05",
        "LLM_SIM_RATE_TIMEOUT": "0",
        "LLM_SIM_RATE_MALFORMED": " 0.2 ",
        "LLM_SIM_SEED": "3",
    }
    assert SimOptions.from_env(env) == SimOptions(
        latency_ms=200, jitter_ms=20.5, rate_429=0.1, rate_500=0.05, rate_malformed=0.2, seed=3
    )
    assert SimOptions.from_env({}) == SimOptions()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LLM_SIM_LATENCY_MS", "fast"),
        ("LLM_SIM_LATENCY_MS", "-1"),
        ("LLM_SIM_RATE_429", "1.5"),
        ("LLM_SIM_RATE_MALFORMED", "nan"),
        ("LLM_SIM_SEED", "0.5"),
    ],
)
def test_bad_env_value_names_the_variable(
    variable: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        SimOptions.from_env({variable: value})
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert variable in err


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "llm_sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(signum: signal.Signals) -> None:
    proc = _cli("--port", "0", "--latency-ms", "1", "--rate-500", "0", "--seed", "1")
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving http://127.0.0.1:" in line
        base_url = line.rsplit(" ", 1)[1].strip()
        response = httpx.post(f"{base_url}/chat/completions", json=_core_body("Buy groceries"))
        assert response.status_code == 200
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--rate-429", "2"], {}, "--rate-429"),
        (["--rate-500", "abc"], {}, "--rate-500"),
        ([], {"LLM_SIM_RATE_TIMEOUT": "x"}, "LLM_SIM_RATE_TIMEOUT"),
        ([], {"LLM_SIM_PORT": "99999"}, "LLM_SIM_PORT"),
    ],
)
def test_cli_rejects_bad_options(args: list[str], env: dict[str, str], needle: str) -> None:
    proc = _cli(*args, env=env)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert needle in err


def test_cli_help() -> None:
    proc = _cli("--help")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    for option in ("--latency-ms", "--jitter-ms", "--rate-429", "--rate-timeout", "--port"):
        assert option in out
