"""The output validator is total (SPEC §10, issue 10.2): any answer a model can send is either
a valid task / verdict or OutputInvalid with reasons, never another exception."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskmesh.capabilities.errors import sanitise_detail
from taskmesh.capabilities.llm_calls import retry_after_seconds
from taskmesh.capabilities.parse_task import config as cfg
from taskmesh.capabilities.parse_task.schema import (
    OutputInvalid,
    parse_core,
    parse_due_date,
    parse_subtasks,
)
from taskmesh.jobs.v1 import jobs_pb2

CONFIG = cfg.default_config()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

absurd_ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([12345678901, -12345678901, 2**31, -(2**31) - 1, 2**63, 10**400]),
)
absurd_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([7.0, 7.5, -0.0, 1e308])
)
absurd_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.sampled_from(["", " ", "\x00", "\ud800", "a" * 5000, "准备季度销售报告", "null", "None"]),
)
absurd_dates = st.one_of(
    st.sampled_from(
        [
            "9999-12-31T20:00:00-05:00",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59Z",
            "0000-01-01",
            "2024-02-30",
            "2024-01-16T25:00:00Z",
            "+275760-09-13T00:00:00Z",
            "2024-01-16T00:00:00+24:00",
            "1e400",
            "2024-01-16T00:00:00.123456789Z",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat()),
    absurd_text,
)
json_scalars = st.one_of(st.none(), st.booleans(), absurd_ints, absurd_floats, absurd_text)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


def _any(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: usually of its absurd kind, sometimes any JSON at all."""
    return st.one_of(strategy, json_values)


tasks = st.fixed_dictionaries(
    {
        "title": _any(absurd_text),
        "dueDate": _any(absurd_dates),
        "category": _any(st.sampled_from([*cfg.DEFAULT_CATEGORIES, "FINANCE", "x"])),
        "priority": _any(
            st.fixed_dictionaries(
                {
                    "level": _any(st.sampled_from(["low", "medium", "high", "critical", ""])),
                    "score": _any(st.one_of(absurd_ints, absurd_floats)),
                    "reason": _any(absurd_text),
                }
            )
        ),
    }
)
core_answers = st.one_of(
    st.fixed_dictionaries(
        {
            "result": _any(st.sampled_from(["task", "vague"])),
            "task": st.one_of(st.none(), tasks),
            "error": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"reason": _any(absurd_text), "suggestions": _any(st.lists(absurd_text))}
                ),
            ),
        }
    ),
    tasks,
    json_values,
)


def _dump(value: Any) -> str:
    # allow_nan: models do send NaN and Infinity, which are not JSON.
    return json.dumps(value, allow_nan=True)


def _assert_total(call: Any) -> Any:
    try:
        result = call()
    except OutputInvalid as exc:
        assert exc.errors and all(isinstance(e, str) and 0 < len(e) < 400 for e in exc.errors)
        return None
    return result


@FUZZ
@given(core_answers)
def test_core_validator_is_total_on_any_json(answer: Any) -> None:
    result = _assert_total(lambda: parse_core(_dump(answer), CONFIG))
    if isinstance(result, jobs_pb2.ParseTaskOutput):
        # A valid task is one the rest of the system can store and show.
        assert result.SerializeToString()
        level = cfg.level_by_name(CONFIG, result.priority.level)
        assert level is not None and level.min_score <= result.priority.score <= level.max_score
        assert result.category in CONFIG.categories
        if result.HasField("due_time"):
            assert 1970 <= result.due_time.ToDatetime().year <= 9998
    elif result is not None:
        assert isinstance(result, jobs_pb2.VagueInput)
        assert 1 <= len(result.suggestions) <= 3 and result.SerializeToString()


@FUZZ
@given(st.text(max_size=300))
def test_core_validator_is_total_on_any_text(content: str) -> None:
    _assert_total(lambda: parse_core(content, CONFIG))


@FUZZ
@given(_any(st.fixed_dictionaries({"subtasks": _any(st.lists(_any(absurd_text), max_size=9))})))
def test_subtasks_validator_is_total(answer: Any) -> None:
    result = _assert_total(lambda: parse_subtasks(_dump(answer)))
    if result is not None:
        assert 3 <= len(result) <= 7 and all(isinstance(s, str) and s for s in result)


def _task(**changes: Any) -> dict[str, Any]:
    task = {
        "title": "Pay Electricity Bill",
        "dueDate": "2024-01-16T00:00:00Z",
        "category": "finance",
        "priority": {"level": "high", "score": 7, "reason": "Late fees."},
    }
    priority = {k: changes.pop(k) for k in ("level", "score", "reason") if k in changes}
    task["priority"] = {**task["priority"], **priority}  # type: ignore[dict-item]
    return {"result": "task", "task": {**task, **changes}, "error": None}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"score": 12345678901}, "priority.score must be a whole number from 7 to 8"),
        ({"score": -(2**63)}, "priority.score must be a whole number from 7 to 8"),
        # NaN and Infinity are not JSON numbers (RFC 8259 §6), whatever Python's parser allows.
        ({"score": math.inf}, "not valid JSON"),
        ({"score": math.nan}, "not valid JSON"),
        ({"score": 7.0}, "priority.score must be a whole number"),
        ({"score": True}, "priority.score must be a whole number"),
        ({"dueDate": "9999-12-31T20:00:00-05:00"}, "dueDate must be a date in ISO 8601"),
        ({"dueDate": "0001-01-01T00:00:00+05:00"}, "dueDate must be a date in ISO 8601"),
        ({"dueDate": "2024-02-30"}, "dueDate must be a date in ISO 8601"),
        ({"dueDate": 20240116}, "dueDate must be text"),
        ({"title": "\ud800 Pay Bill"}, "must be plain text"),
        ({"title": ["Pay", "Bill"]}, "title must be text"),
        ({"title": "word " * 10_000}, "title must have 2-8 words"),
        ({"priority": "high"}, "priority must be an object"),
    ],
)
def test_absurd_values_are_reported_as_invalid_output(change: dict[str, Any], rule: str) -> None:
    with pytest.raises(OutputInvalid) as info:
        parse_core(_dump(_task(**change)), CONFIG)
    assert any(rule in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    "content",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        "{" * 10_000,
        '{"result": "task", "task": ' + "[" * 5000 + "]" * 5000 + "}",
        "x" * 1_000_000,
        '{"result": NaN}',
        "\x00\x01\x02",
    ],
)
def test_pathological_documents_are_invalid_output(content: str) -> None:
    with pytest.raises(OutputInvalid):
        parse_core(content, CONFIG)
    with pytest.raises(OutputInvalid):
        parse_subtasks(content)


@FUZZ
@given(absurd_dates)
def test_due_date_parser_raises_only_value_error(value: str) -> None:
    try:
        parsed = parse_due_date(value)
    except ValueError:
        return
    assert parsed is None or (parsed.tzinfo is not None and 1970 <= parsed.year <= 9998)


@FUZZ
@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms"]), absurd_text))
def test_retry_after_parser_is_total(headers: dict[str, str]) -> None:
    value = retry_after_seconds(headers)
    assert value is None or (math.isfinite(value) and value >= 0)


@FUZZ
@given(st.one_of(absurd_text, json_values))
def test_endpoint_message_sanitiser_is_total(message: Any) -> None:
    detail = sanitise_detail(message)
    assert isinstance(detail, str) and len(detail) <= 200
