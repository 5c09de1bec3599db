"""Output side of parse-task: the JSON schemas the model is asked to follow, and the checks
its answer must pass. The model is never trusted: an answer that breaks a rule here is a
failed attempt, whatever the endpoint claims about structured output."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskmesh.jobs.v1 import jobs_pb2

from .config import category_by_name, level_by_name

CORE_SCHEMA_NAME = "parse_task_core"
SUBTASKS_SCHEMA_NAME = "parse_task_subtasks"

TITLE_WORDS = (2, 8)
SUBTASK_WORDS = (2, 8)
SUBTASK_COUNT = (3, 7)
SUGGESTION_COUNT = (1, 3)
MAX_PHRASE_CHARS = 120
MAX_SENTENCE_CHARS = 400


class OutputInvalid(Exception):
    """The answer broke the contract; ``errors`` are phrased so the model can fix them."""

    def __init__(self, errors: list[str], *, verdict: str | None = None) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
        #: "vague" when the rejected answer was a vague-input verdict, "task" when it was a
        #: task, None when it could not be told.
        self.verdict = verdict


# --- wire models ---------------------------------------------------------------------------
# Strict: a score of 7.5 or true, or a title given as a number, is a broken answer rather
# than something to coerce. Extra keys are ignored because lenient servers add them.


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class PriorityAnswer(_Model):
    level: str
    score: int
    reason: str


class TaskAnswer(_Model):
    title: str
    due_date: str | None = Field(default=None, alias="dueDate")
    category: str
    priority: PriorityAnswer


class VagueAnswer(_Model):
    reason: str
    suggestions: list[str]


class CoreAnswer(_Model):
    result: Literal["task", "vague"]
    task: TaskAnswer | None = None
    error: VagueAnswer | None = None


class SubtasksAnswer(_Model):
    subtasks: list[str] | None


# --- JSON schemas (OpenAI strict mode: every property required, no extra properties) --------


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(properties),
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def core_schema(config: jobs_pb2.ParseTaskConfig) -> dict[str, Any]:
    """One schema for both outcomes, since strict mode allows no top-level union:
    ``result`` says which of ``task`` and ``error`` is filled, the other is null."""
    task = _object(
        {
            "title": {"type": "string", "description": "2-8 words, title case"},
            "dueDate": {
                "type": ["string", "null"],
                "description": "UTC ISO 8601 such as 2024-01-16T00:00:00Z, or null",
            },
            "category": {"type": "string", "enum": list(config.categories)},
            "priority": _object(
                {
                    "level": {
                        "type": "string",
                        "enum": [lvl.name for lvl in config.priority_levels],
                    },
                    "score": {"type": "integer", "description": "inside the level's range"},
                    "reason": {"type": "string", "description": "one short sentence"},
                }
            ),
        }
    )
    error = _object(
        {
            "reason": {"type": "string", "description": "why the request cannot be a task"},
            "suggestions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "1-3 questions or missing details",
            },
        }
    )
    return _object(
        {
            "result": {"type": "string", "enum": ["task", "vague"]},
            "task": _nullable(task),
            "error": _nullable(error),
        }
    )


def subtasks_schema() -> dict[str, Any]:
    return _object(
        {
            "subtasks": _nullable(
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "3-7 steps of 2-8 words, or null for an atomic task",
                }
            )
        }
    )


def _response_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def core_response_format(config: jobs_pb2.ParseTaskConfig) -> dict[str, Any]:
    return _response_format(CORE_SCHEMA_NAME, core_schema(config))


def subtasks_response_format() -> dict[str, Any]:
    return _response_format(SUBTASKS_SCHEMA_NAME, subtasks_schema())


# --- text rules --------------------------------------------------------------------------------

_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of"}
    | {"on", "or", "per", "the", "to", "vs", "via", "with"}
)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")
_TRAILING = ".,;:!?"
_QUOTES = "\"'`\u201c\u201d\u2018\u2019 "


def title_case(text: str) -> str:
    """Title case that leaves acronyms and brand casing (Q2, iPhone) alone and keeps
    short function words lower case inside the phrase."""
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        inner = 0 < i < len(words) - 1
        if inner and word.casefold() in _SMALL_WORDS:
            out.append(word.lower())
        else:
            out.append("-".join(_capitalise(part) for part in word.split("-")))
    return " ".join(out)


def _capitalise(word: str) -> str:
    for i, char in enumerate(word):
        if char.isalpha():
            if char.islower() and not any(c.isupper() for c in word[i + 1 :]):
                return word[:i] + char.upper() + word[i + 1 :]
            return word
    return word


def clean_phrase(text: str) -> str:
    """Whitespace collapsed, list markers, wrapping quotes and end punctuation dropped."""
    phrase = " ".join(_LIST_MARKER.sub("", text).split())
    phrase = phrase.strip(_QUOTES).rstrip(_TRAILING).strip()
    return phrase


def _phrase(value: str, what: str, words: tuple[int, int], errors: list[str]) -> str:
    phrase = clean_phrase(value)
    count = len(phrase.split())
    if not words[0] <= count <= words[1]:
        errors.append(f"{what} must have {words[0]}-{words[1]} words (got {count}: {phrase!r})")
    elif len(phrase) > MAX_PHRASE_CHARS:
        errors.append(f"{what} must be at most {MAX_PHRASE_CHARS} characters")
    return title_case(phrase)


def _sentence(value: str, what: str, errors: list[str]) -> str:
    sentence = " ".join(value.split())
    if not sentence:
        errors.append(f"{what} must not be empty")
    elif len(sentence) > MAX_SENTENCE_CHARS:
        errors.append(f"{what} must be at most {MAX_SENTENCE_CHARS} characters")
    return sentence


def parse_due_date(value: str | None) -> datetime | None:
    """ISO 8601 to an aware UTC datetime; a date alone means midnight UTC of that day,
    a time without offset is taken as UTC."""
    if value is None or not value.strip() or value.strip().casefold() == "null":
        return None
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- JSON extraction ---------------------------------------------------------------------------


def extract_json(content: str | None) -> dict[str, Any]:
    """The first JSON object in ``content``: servers that ignore ``response_format`` wrap
    it in code fences or prose."""
    if not content or not content.strip():
        raise OutputInvalid(["the answer is empty; reply with one JSON object"])
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = _first_object(text)
    if not isinstance(value, dict):
        raise OutputInvalid(["the answer is not a JSON object; reply with one JSON object"])
    return value


def _first_object(text: str) -> object:
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    raise OutputInvalid(["the answer is not valid JSON; reply with one JSON object"])


def _pydantic_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "answer"
        out.append(f"{where}: {err['msg']}")
    return out


# --- answers -------------------------------------------------------------------------------------


def parse_core(
    content: str | None, config: jobs_pb2.ParseTaskConfig
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    """The core answer checked against ``config``: a task (without subtasks) or a
    vague-input verdict. Raises :class:`OutputInvalid` listing every broken rule."""
    data = extract_json(content)
    if "result" not in data:
        data = _envelope(data)
    try:
        answer = CoreAnswer.model_validate(data)
    except ValidationError as exc:
        raise OutputInvalid(_pydantic_errors(exc)) from None
    try:
        if answer.result == "vague":
            if answer.error is None:
                raise OutputInvalid(['"error" must be an object when "result" is "vague"'])
            return check_vague(answer.error)
        if answer.task is None:
            raise OutputInvalid(['"task" must be an object when "result" is "task"'])
        return check_task(answer.task, config)
    except OutputInvalid as exc:
        exc.verdict = answer.result
        raise


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    # Servers without structured output tend to answer in the bare shapes:
    # {"error": {...}} for a vague input, the task's own fields otherwise.
    if "error" in data and "title" not in data:
        return {"result": "vague", "error": data["error"]}
    return {"result": "task", "task": data}


def check_vague(answer: VagueAnswer) -> jobs_pb2.VagueInput:
    errors: list[str] = []
    reason = _sentence(answer.reason, "error.reason", errors)
    suggestions = [
        _sentence(s, f"error.suggestions[{i}]", errors) for i, s in enumerate(answer.suggestions)
    ]
    low, high = SUGGESTION_COUNT
    if not low <= len(suggestions) <= high:
        errors.append(f"error.suggestions must have {low}-{high} items (got {len(suggestions)})")
    if errors:
        raise OutputInvalid(errors)
    return jobs_pb2.VagueInput(reason=reason, suggestions=suggestions)


def check_task(answer: TaskAnswer, config: jobs_pb2.ParseTaskConfig) -> jobs_pb2.ParseTaskOutput:
    errors: list[str] = []
    out = jobs_pb2.ParseTaskOutput()
    out.title = _phrase(answer.title, "task.title", TITLE_WORDS, errors)

    try:
        due = parse_due_date(answer.due_date)
    except ValueError:
        errors.append(f"task.dueDate must be ISO 8601 or null (got {answer.due_date!r})")
    else:
        if due is not None:
            out.due_time.FromDatetime(due)

    category = category_by_name(config, answer.category)
    if category is None:
        allowed = ", ".join(config.categories)
        errors.append(f"task.category must be one of: {allowed} (got {answer.category!r})")
    else:
        out.category = category

    priority = answer.priority
    level = level_by_name(config, priority.level)
    if level is None:
        allowed = ", ".join(lvl.name for lvl in config.priority_levels)
        errors.append(f"task.priority.level must be one of: {allowed} (got {priority.level!r})")
    else:
        out.priority.level = level.name
        if not level.min_score <= priority.score <= level.max_score:
            errors.append(
                f"task.priority.score must be an integer from {level.min_score} to "
                f"{level.max_score} for level {level.name!r} (got {priority.score})"
            )
    out.priority.score = priority.score
    out.priority.reason = _sentence(priority.reason, "task.priority.reason", errors)

    if errors:
        raise OutputInvalid(errors)
    return out


def parse_subtasks(content: str | None) -> list[str]:
    """Checked subtasks; an empty list means the task is atomic."""
    data = extract_json(content)
    try:
        answer = SubtasksAnswer.model_validate(data)
    except ValidationError as exc:
        raise OutputInvalid(_pydantic_errors(exc)) from None
    if not answer.subtasks:
        return []
    errors: list[str] = []
    steps = [
        _phrase(step, f"subtasks[{i}]", SUBTASK_WORDS, errors)
        for i, step in enumerate(answer.subtasks)
    ]
    low, high = SUBTASK_COUNT
    if not low <= len(steps) <= high:
        errors.append(f"subtasks must have {low}-{high} items or be null (got {len(steps)})")
    if len({s.casefold() for s in steps}) != len(steps):
        errors.append("subtasks must be distinct")
    if errors:
        raise OutputInvalid(errors)
    return steps
