"""The JSON schemas the model is given are generated from the answer models, follow
OpenAI strict mode, and state the same limits the output checks enforce."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.capabilities.parse_task.schema import (
    OutputInvalid,
    core_schema,
    parse_core,
    parse_subtasks,
    subtasks_schema,
)
from taskmesh.jobs.v1 import jobs_pb2

CONFIG = default_config()
STEPS = [
    "Call the venue",
    "Draft the budget",
    "Send the invites",
    "Book the caterer",
    "Order the drinks",
    "Print the badges",
    "Plan the agenda",
    "Rent the chairs",
    "Hire a photographer",
    "Collect the feedback",
]
QUESTIONS = [f"Which {thing} do you mean?" for thing in ("team", "date", "venue", "budget", "city")]


def _walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for key, value in node.items():
            if key == "properties":
                for prop in value.values():
                    found.extend(_walk(prop))
            else:
                found.extend(_walk(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_walk(item))
    return found


@pytest.mark.parametrize("schema", [core_schema(CONFIG), subtasks_schema()], ids=["core", "subs"])
def test_schemas_follow_strict_mode(schema: dict[str, Any]) -> None:
    nodes = _walk(schema)
    objects = [n for n in nodes if n.get("type") == "object"]
    assert objects
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    for node in nodes:
        assert not {"$ref", "$defs", "title", "default"} & set(node)


def _task(category: str, level: str, score: int) -> str:
    priority = {"level": level, "score": score, "reason": "It affects the whole team."}
    task = {"title": "Plan Team Offsite", "dueDate": None, "category": category}
    return json.dumps({"result": "task", "task": {**task, "priority": priority}, "error": None})


def _vague(count: int) -> str:
    error = {"reason": "The request names no task.", "suggestions": QUESTIONS[:count]}
    return json.dumps({"result": "vague", "task": None, "error": error})


def test_category_and_level_enums_are_the_ones_the_checks_accept() -> None:
    task = core_schema(CONFIG)["properties"]["task"]["anyOf"][0]["properties"]
    categories = task["category"]["enum"]
    levels = task["priority"]["properties"]["level"]["enum"]
    assert categories == list(CONFIG.categories)
    assert levels == [lvl.name for lvl in CONFIG.priority_levels]
    low = CONFIG.priority_levels[0]
    for category in categories:
        out = parse_core(_task(category, low.name, low.min_score), CONFIG)
        assert isinstance(out, jobs_pb2.ParseTaskOutput) and out.category == category
    with pytest.raises(OutputInvalid):
        parse_core(_task("not-" + categories[0], low.name, low.min_score), CONFIG)
    with pytest.raises(OutputInvalid):
        parse_core(_task(categories[0], "not-" + low.name, low.min_score), CONFIG)


def test_score_bounds_are_the_ones_the_checks_accept() -> None:
    score = core_schema(CONFIG)["properties"]["task"]["anyOf"][0]["properties"]["priority"][
        "properties"
    ]["score"]
    by_score = {
        s: lvl.name
        for lvl in CONFIG.priority_levels
        for s in range(lvl.min_score, lvl.max_score + 1)
    }
    category = CONFIG.categories[0]
    for edge in (score["minimum"], score["maximum"]):
        out = parse_core(_task(category, by_score[edge], edge), CONFIG)
        assert isinstance(out, jobs_pb2.ParseTaskOutput) and out.priority.score == edge
    for outside, level in (
        (score["minimum"] - 1, score["minimum"]),
        (score["maximum"] + 1, score["maximum"]),
    ):
        with pytest.raises(OutputInvalid):
            parse_core(_task(category, by_score[level], outside), CONFIG)


def test_suggestion_bounds_are_the_ones_the_checks_accept() -> None:
    error = core_schema(CONFIG)["properties"]["error"]["anyOf"][0]["properties"]
    bounds = error["suggestions"]
    for count in (bounds["minItems"], bounds["maxItems"]):
        assert isinstance(parse_core(_vague(count), CONFIG), jobs_pb2.VagueInput)
    for count in (bounds["minItems"] - 1, bounds["maxItems"] + 1):
        with pytest.raises(OutputInvalid):
            parse_core(_vague(count), CONFIG)


def test_subtask_bounds_are_the_ones_the_checks_accept() -> None:
    (steps, _) = subtasks_schema()["properties"]["subtasks"]["anyOf"]
    assert steps["maxItems"] + 1 <= len(STEPS)
    for count in (steps["minItems"], steps["maxItems"]):
        checked = parse_subtasks(json.dumps({"subtasks": STEPS[:count]}))
        assert checked is not None and len(checked) == count
    for count in (steps["minItems"] - 1, steps["maxItems"] + 1):
        if count == 0:
            continue  # an empty list reads as an atomic task, like null
        with pytest.raises(OutputInvalid):
            parse_subtasks(json.dumps({"subtasks": STEPS[:count]}))
