"""Output side of parse-task: the JSON schemas the model is asked to follow, and the checks
its answer must pass. The model is never trusted: an answer that breaks a rule here is a
failed attempt, whatever the endpoint claims about structured output."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskmesh.hidden_chars import JOINERS, is_format
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.timestamps import to_timestamp

from ..llm_calls import ResponseSchema, json_schema_format
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
    level: str  # enum: the config's levels (core_schema)
    score: int = Field(description="inside the level's range")
    reason: str = Field(description="one short sentence")


class TaskAnswer(_Model):
    title: str = Field(description=f"{TITLE_WORDS[0]}-{TITLE_WORDS[1]} words, title case")
    due_date: str | None = Field(
        default=None,
        alias="dueDate",
        description="UTC ISO 8601 such as 2024-01-16T00:00:00Z, or null",
    )
    category: str  # enum: the config's categories (core_schema)
    priority: PriorityAnswer


class VagueAnswer(_Model):
    reason: str = Field(description="why the request cannot be a task")
    suggestions: list[str] = Field(
        description=f"{SUGGESTION_COUNT[0]}-{SUGGESTION_COUNT[1]} questions or missing details",
        # Schema only: a list of another length is refused by the checks below, with a
        # message the model can act on.
        json_schema_extra={"minItems": SUGGESTION_COUNT[0], "maxItems": SUGGESTION_COUNT[1]},
    )


class CoreAnswer(_Model):
    result: Literal["task", "vague"]
    task: TaskAnswer | None = None
    error: VagueAnswer | None = None


#: The steps of a task, as the schema states them (the checks below enforce them).
Steps = Annotated[
    list[str],
    Field(
        description=f"{SUBTASK_COUNT[0]}-{SUBTASK_COUNT[1]} steps of "
        f"{SUBTASK_WORDS[0]}-{SUBTASK_WORDS[1]} words, or null for an atomic task",
        # The bound ends a rambling list (issue 14.2: ~79 tokens with it, a 2,472-token
        # runaway without it).
        json_schema_extra={"minItems": SUBTASK_COUNT[0], "maxItems": SUBTASK_COUNT[1]},
    ),
]


class SubtasksAnswer(_Model):
    subtasks: Steps | None


# --- JSON schemas, generated from the models above ------------------------------------------
# OpenAI strict mode: every object closed (additionalProperties false) with every property
# required, no $ref, title or default. Nullable stays ``anyOf`` a type and null, never a list of
# types: strict mode takes both, but llama-cpp-python's grammar converter (0.2.60) rejects type
# lists and then constrains nothing (the conformance run: SmolLM2 left title, category and
# priority out). A test holds the constraints to the checks below.

_DROPPED = frozenset({"title", "default", "$defs"})


def _strict(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` of a pydantic JSON schema rewritten to strict mode's rules."""
    if isinstance(node, list):
        return [_strict(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _strict(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _strict(prop, defs) for name, prop in value.items()}
        elif key not in _DROPPED:
            out[key] = _strict(value, defs)
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


@cache
def _generated(model: type[BaseModel]) -> str:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return json.dumps(_strict(raw, raw.get("$defs", {})))


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The strict-mode JSON schema of one of the answer models (a fresh copy)."""
    schema: dict[str, Any] = json.loads(_generated(model))
    return schema


def _score_bounds(config: jobs_pb2.ParseTaskConfig) -> dict[str, int]:
    """``minimum``/``maximum`` over every level (OpenAI strict mode accepts both on integers,
    as it does ``minItems``/``maxItems`` on arrays; a per-level range cannot be said in the
    schema, so the validator checks it)."""
    levels = list(config.priority_levels)
    if not levels:
        return {}
    return {
        "minimum": min(lvl.min_score for lvl in levels),
        "maximum": max(lvl.max_score for lvl in levels),
    }


def core_schema(config: jobs_pb2.ParseTaskConfig) -> dict[str, Any]:
    """One schema for both outcomes, since strict mode allows no top-level union:
    ``result`` says which of ``task`` and ``error`` is filled, the other is null.
    ``CoreAnswer``'s schema with the config's categories, levels and score bounds."""
    schema = strict_schema(CoreAnswer)
    task = schema["properties"]["task"]["anyOf"][0]["properties"]
    task["category"]["enum"] = list(config.categories)
    priority = task["priority"]["properties"]
    priority["level"]["enum"] = [lvl.name for lvl in config.priority_levels]
    priority["score"].update(_score_bounds(config))
    return schema


def subtasks_schema() -> dict[str, Any]:
    """``SubtasksAnswer``'s schema."""
    return strict_schema(SubtasksAnswer)


#: Distinct configs whose prepared core schema is kept (a few KB each); clients that send a
#: config mostly send the same few.
CORE_SCHEMAS_KEPT = 64


def core_response_schema(config: jobs_pb2.ParseTaskConfig) -> ResponseSchema:
    """:func:`core_schema` of ``config`` prepared for calls (encoded once per distinct config
    and process, see :class:`~taskmesh.capabilities.llm_calls.ResponseSchema`); shared, so
    never mutate its ``schema``."""
    return _core_response_schema(config.SerializeToString(deterministic=True))


@functools.lru_cache(maxsize=CORE_SCHEMAS_KEPT)
def _core_response_schema(config: bytes) -> ResponseSchema:
    return ResponseSchema.of(
        CORE_SCHEMA_NAME, core_schema(jobs_pb2.ParseTaskConfig.FromString(config))
    )


@cache
def subtasks_response_schema() -> ResponseSchema:
    """:func:`subtasks_schema` prepared for calls, once per process; shared, so never mutate
    its ``schema``."""
    return ResponseSchema.of(SUBTASKS_SCHEMA_NAME, subtasks_schema())


def core_response_format(config: jobs_pb2.ParseTaskConfig) -> dict[str, Any]:
    """The core call's ``response_format`` (json_schema mode)."""
    return json_schema_format(CORE_SCHEMA_NAME, core_schema(config))


def subtasks_response_format() -> dict[str, Any]:
    """The subtasks call's ``response_format`` (json_schema mode)."""
    return json_schema_format(SUBTASKS_SCHEMA_NAME, subtasks_schema())


# --- text rules --------------------------------------------------------------------------------

_SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of"}
    | {"on", "or", "per", "the", "to", "vs", "via", "with"}
)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```\s*$", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")
_TRAILING = ".,;:!?"
_QUOTES = "\"'`\u201c\u201d\u2018\u2019 "
_ASCII_LETTER = re.compile("[A-Za-z]")


def title_case(text: str) -> str:
    """Title case that leaves acronyms and brand casing (Q2, iPhone) alone and keeps
    short function words lower case inside the phrase."""
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        inner = 0 < i < len(words) - 1
        if inner and word.casefold() in _SMALL_WORDS:
            out.append(word.lower())
        elif "-" in word:
            out.append("-".join([_capitalise(part) for part in word.split("-")]))
        else:
            out.append(_capitalise(word))
    return " ".join(out)


def _capitalise(word: str) -> str:
    if word.isascii():
        # The loop below, in C for ASCII (most answers): the first letter, and whether an
        # upper-case letter follows it (A-Z are ASCII's only upper-case characters).
        first = _ASCII_LETTER.search(word)
        if first is None:
            return word
        i = first.start()
        rest = word[i + 1 :]
        if word[i].islower() and rest == rest.lower():
            return word[:i] + word[i].upper() + rest
        return word
    for i, char in enumerate(word):
        if char.isalpha():
            if char.islower() and not any(c.isupper() for c in word[i + 1 :]):
                return word[:i] + char.upper() + word[i + 1 :]
            return word
    return word


#: A run of joiners (`hidden_chars.JOINERS`): real text between two visible characters (emoji
#: ZWJ sequences such as 👨‍👩‍👧 too), and nothing anywhere else.
_JOINER_RUN = re.compile("[" + "".join(sorted(JOINERS)) + "]+")
#: An emoji tag sequence (UTS #51 §2.3: a black flag, tag characters, a cancel tag, as in the
#: flag of Scotland): the one other place format characters are text (SPEC §5 lists flag tag
#: sequences as ordinary text).
_TAG_SEQUENCE = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")


def visible_text(text: str) -> str:
    """``text`` without the format characters (Unicode category Cf) that only hide or reorder
    it: the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), zero-width
    space, word joiner, byte order mark, soft hyphen and the rest. A model's answer is shown to
    users as it is (Unicode TR #36 §2.2: such characters make a string read as another, or
    pad a title that looks short). The joiners stay where they join two letters, marks,
    digits or symbols, once (a run of them only hides length); emoji tag sequences stay
    whole."""
    if text.isascii():
        return text  # ASCII holds no format character
    kept: list[str] = []
    start = 0
    for flag in _TAG_SEQUENCE.finditer(text):
        kept.append(_without_format(text[start : flag.start()]))
        kept.append(flag.group())
        start = flag.end()
    kept.append(_without_format(text[start:]))
    return _JOINER_RUN.sub(_joiner_between_characters, "".join(kept))


def _without_format(text: str) -> str:
    return "".join(c for c in text if c in JOINERS or not is_format(c))


def _joiner_between_characters(run: re.Match[str]) -> str:
    text = run.string
    before = text[run.start() - 1] if run.start() > 0 else " "
    after = text[run.end()] if run.end() < len(text) else " "
    # A joiner at an end of the text or beside a space joins nothing ("\u200d Family Dinner"),
    # nor beside punctuation, which the title rules may strip next ('"\u200dPay Rent"').
    # Letters, marks (a virama, the emoji presentation selector), digits and symbols (emoji)
    # are what joiners join.
    joins = _joinable(before) and _joinable(after)
    return run.group()[0] if joins else ""


def _joinable(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMNS"


def clean_phrase(text: str) -> str:
    """Whitespace collapsed, list markers, wrapping quotes and end punctuation dropped."""
    phrase = " ".join(_LIST_MARKER.sub("", text).split())
    phrase = phrase.strip(_QUOTES).rstrip(_TRAILING).strip()
    return phrase


#: Scripts written without spaces between words (SPEC §10: titles and steps there are 2-30
#: characters instead of 2-8 words): Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
_LATIN = re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
UNSPACED_CHARS = (2, 30)
_PLACEHOLDER = re.compile(
    r"^(?:step|task|subtask|item)\s+(?:\d+|one|two|three|four|five|six|seven|[a-g])$",
    re.IGNORECASE,
)


def is_unspaced(text: str) -> bool:
    """Whether ``text`` is mostly in a script written without spaces (its letters, not
    digits or Latin acronyms such as "Q2", decide)."""
    if text.isascii():
        return False  # no ASCII character is of an unspaced script
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    unspaced = sum(1 for c in letters if _UNSPACED.match(c))
    return unspaced * 2 >= len(letters)


def normalise_case(phrase: str) -> str:
    """Title case for Latin-script phrases (an English convention the contract asks for);
    other scripts keep their own casing, with only a first lower-case letter raised
    (a no-op for scripts without case)."""
    if phrase.isascii():
        # Every ASCII letter is Latin: title case when there is one, else nothing to raise.
        return title_case(phrase) if _ASCII_LETTER.search(phrase) else phrase
    letters = [c for c in phrase if c.isalpha()]
    latin = sum(1 for c in letters if _LATIN.match(c))
    if letters and latin * 2 >= len(letters):
        return title_case(phrase)
    return _capitalise(phrase) if phrase else phrase


def _shown(value: str, limit: int = 40) -> str:
    """A model's text quoted in an error message, cut short."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _phrase(value: str, what: str, words: tuple[int, int], errors: list[str]) -> str:
    # Invisible characters go before the rules count words: a title of hidden characters
    # alone is an empty title.
    phrase = clean_phrase(visible_text(value))
    if is_unspaced(phrase):
        # Count characters, not spaces: "准备季度销售报告" is one "word" but a fine title.
        count = len("".join(phrase.split()))
        low, high = UNSPACED_CHARS
        if not low <= count <= high:
            errors.append(
                f"{what} must have {low}-{high} characters in this script "
                f"(got {count}: {_shown(phrase)})"
            )
        return normalise_case(phrase)
    count = len(phrase.split())
    if not words[0] <= count <= words[1]:
        errors.append(
            f"{what} must have {words[0]}-{words[1]} words (got {count}: {_shown(phrase)})"
        )
    elif len(phrase) > MAX_PHRASE_CHARS:
        errors.append(f"{what} must be at most {MAX_PHRASE_CHARS} characters")
    else:
        _not_a_description(phrase, what, errors)
    return normalise_case(phrase)


def _sentence(value: str, what: str, errors: list[str]) -> str:
    sentence = " ".join(visible_text(value).split())
    if not sentence:
        errors.append(f"{what} must not be empty")
    elif len(sentence) > MAX_SENTENCE_CHARS:
        errors.append(f"{what} must be at most {MAX_SENTENCE_CHARS} characters")
    else:
        _not_a_description(sentence, what, errors)
    return sentence


def _folded(text: str) -> str:
    return " ".join(text.casefold().strip(" .!?;:").split())


@functools.cache
def _descriptions() -> frozenset[str]:
    """Every ``description`` the schemas carry, folded."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("description"), str):
                found.add(_folded(node["description"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(core_schema(jobs_pb2.ParseTaskConfig()))
    walk(subtasks_schema())
    return frozenset(found)


def _not_a_description(text: str, what: str, errors: list[str]) -> None:
    """A small model copies the schema's descriptions as values (the real-server run: every
    sentence became "vague" with the reason "why the request cannot be a task")."""
    if _folded(text) in _descriptions():
        errors.append(
            f"{what} repeats the schema's description ({_shown(text)}); "
            "write this request's own text"
        )


#: Due dates a to-do task can have: protobuf Timestamps stop at year 9999, and a model that
#: answers year 1 or 9999 is not reading the sentence.
DUE_YEARS = (1970, 9998)


def parse_due_date(value: str | None) -> datetime | None:
    """ISO 8601 to an aware UTC datetime; a date alone means midnight UTC of that day,
    a time without offset is taken as UTC. Raises ValueError for anything else, dates
    outside :data:`DUE_YEARS` included (never OverflowError)."""
    if value is None or not value.strip() or value.strip().casefold() == "null":
        return None
    text = value.strip()
    if len(text) > 64:
        raise ValueError("too long for a date")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(str(exc)) from None
    if not DUE_YEARS[0] <= parsed.year <= DUE_YEARS[1]:
        raise ValueError(f"year {parsed.year} is out of range")
    return parsed


def _valid_text(value: str) -> bool:
    """Strings that can travel in protobuf and JSON: no lone surrogates, no NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


# --- JSON extraction ---------------------------------------------------------------------------

#: Longest answer read: bounded calls produce far less; more is a runaway, not an answer.
MAX_ANSWER_CHARS = 100_000


def extract_json(content: str | None) -> dict[str, Any]:
    """The first JSON object in ``content``: servers that ignore ``response_format`` wrap
    it in code fences or prose. Raises only :class:`OutputInvalid`."""
    if not isinstance(content, str) or not content.strip():
        raise OutputInvalid(["the answer is empty; reply with one JSON object"])
    if len(content) > MAX_ANSWER_CHARS:
        raise OutputInvalid(["the answer is far too long; reply with one short JSON object"])
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, _NotJSON):
        value = _first_object(text)
    except (RecursionError, ValueError):
        raise OutputInvalid(["the answer is not valid JSON; reply with one JSON object"]) from None
    if not isinstance(value, dict):
        raise OutputInvalid(["the answer is not a JSON object; reply with one JSON object"])
    return value


class _NotJSON(ValueError):
    pass


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6); Python's parser accepts them by default.
    raise _NotJSON(name)


def _first_object(text: str) -> object:
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value
        except (json.JSONDecodeError, _NotJSON):
            start = text.find("{", start + 1)
        except (RecursionError, ValueError):
            break
    raise OutputInvalid(["the answer is not valid JSON; reply with one JSON object"])


# Field names as the API shows them to users and the schema shows them to the model.
_FIELD_NAMES = {
    "result": "result",
    "task": "task",
    "error": "error",
    "task.title": "title",
    "task.dueDate": "dueDate",
    "task.category": "category",
    "task.priority": "priority",
    "task.priority.level": "priority.level",
    "task.priority.score": "priority.score",
    "task.priority.reason": "priority.reason",
    "error.reason": "the reason the request is vague",
    "error.suggestions": "the suggestions",
}
_TYPE_WORDS = {
    "missing": "is missing",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "literal_error": 'must be "task" or "vague"',
    "none_required": "must be null",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    path = ".".join(str(p) for p in loc if not str(p).startswith(("function-", "is-instance")))
    if path in _FIELD_NAMES:
        return _FIELD_NAMES[path]
    # subtasks.3 -> subtasks[3]; other unknown paths as they are.
    parts = [str(p) for p in loc]
    if len(parts) == 2 and parts[0] == "subtasks" and parts[1].isdigit():
        return f"subtasks[{parts[1]}]"
    if len(parts) == 3 and parts[:2] == ["error", "suggestions"] and parts[2].isdigit():
        return f"suggestion {int(parts[2]) + 1}"
    return path or "the answer"


def _pydantic_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors in the words the rest of the checks use ("priority.score must be a
    whole number"), each once."""
    out: list[str] = []
    for err in exc.errors(include_url=False, include_input=False):
        words = _TYPE_WORDS.get(err["type"], str(err.get("msg", "is not valid")).lower())
        message = f"{_field_name(tuple(err['loc']))} {words}"
        if message not in out:
            out.append(message)
    return out[:20]


# --- answers -------------------------------------------------------------------------------------


def parse_core(
    content: str | None, config: jobs_pb2.ParseTaskConfig
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    """The core answer checked against ``config``: a task (without subtasks) or a
    vague-input verdict. Total (SPEC §10): raises :class:`OutputInvalid` listing every broken
    rule, for any content whatever, and nothing else."""
    try:
        return _parse_core(content, config)
    except OutputInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - the validator must be total (issue 10.2)
        raise OutputInvalid(
            [f"the answer could not be checked ({type(exc).__name__}); reply with one JSON object"]
        ) from None


def _parse_core(
    content: str | None, config: jobs_pb2.ParseTaskConfig
) -> jobs_pb2.ParseTaskOutput | jobs_pb2.VagueInput:
    data = extract_json(content)
    if "result" not in data:
        data = _envelope(data)
    try:
        answer = CoreAnswer.model_validate(data)
    except ValidationError as exc:
        raise OutputInvalid(_pydantic_errors(exc), verdict=_verdict(data)) from None
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


def _verdict(data: dict[str, Any]) -> str | None:
    result = data.get("result")
    return result if result in ("task", "vague") else None


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    # Servers without structured output tend to answer in the bare shapes:
    # {"error": {...}} for a vague input, the task's own fields otherwise.
    if "error" in data and "title" not in data:
        return {"result": "vague", "error": data["error"]}
    return {"result": "task", "task": data}


def check_vague(answer: VagueAnswer) -> jobs_pb2.VagueInput:
    errors: list[str] = []
    reason = _sentence(answer.reason, "the reason the request is vague", errors)
    suggestions = [
        _sentence(s, f"suggestion {i + 1}", errors) for i, s in enumerate(answer.suggestions[:10])
    ]
    low, high = SUGGESTION_COUNT
    if not low <= len(answer.suggestions) <= high:
        errors.append(f"there must be {low}-{high} suggestions (got {len(answer.suggestions)})")
    _not_placeholders(reason, suggestions, errors)
    if not all(_valid_text(t) for t in (reason, *suggestions)):
        errors.append("the reason and suggestions must be plain text")
    if errors:
        raise OutputInvalid(errors)
    return jobs_pb2.VagueInput(reason=reason, suggestions=suggestions)


def _not_placeholders(reason: str, suggestions: list[str], errors: list[str]) -> None:
    """A verdict a user can act on. The llama-server run (SmolLM2-135M, 2026-11-30) answered
    clear sentences with the reason "vague" and, as suggestions, the prompt's example date
    repeated: accepted, the user read "vague" and three timestamps."""
    if _folded(reason) in ("vague", "task"):
        errors.append(f"the reason the request is vague must say why, not only {_shown(reason)}")
    folded = [_folded(s) for s in suggestions]
    if len(set(folded)) < len(folded):
        errors.append("suggestions must be distinct")
    for i, text in enumerate(suggestions):
        try:
            is_date = parse_due_date(text) is not None
        except ValueError:
            is_date = False
        if is_date:
            errors.append(
                f"suggestion {i + 1} is a date alone ({_shown(text)}); "
                "ask a question or name a missing detail"
            )


def check_task(answer: TaskAnswer, config: jobs_pb2.ParseTaskConfig) -> jobs_pb2.ParseTaskOutput:
    errors: list[str] = []
    out = jobs_pb2.ParseTaskOutput()
    title = _phrase(answer.title, "title", TITLE_WORDS, errors)

    due: datetime | None = None
    try:
        due = parse_due_date(answer.due_date)
    except ValueError:
        errors.append(
            "dueDate must be a date in ISO 8601 such as 2024-01-16T00:00:00Z, or null "
            f"(got {_shown(answer.due_date or '')})"
        )

    category = category_by_name(config, answer.category)
    if category is None:
        allowed = ", ".join(config.categories)
        errors.append(f"category must be one of: {allowed} (got {_shown(answer.category)})")

    priority = answer.priority
    level = level_by_name(config, priority.level)
    if level is None:
        allowed = ", ".join(lvl.name for lvl in config.priority_levels)
        errors.append(f"priority.level must be one of: {allowed} (got {_shown(priority.level)})")
    elif not level.min_score <= priority.score <= level.max_score:
        errors.append(
            f"priority.score must be a whole number from {level.min_score} to "
            f"{level.max_score} for level {level.name!r} (got {_shown(str(priority.score), 24)})"
        )
    reason = _sentence(priority.reason, "priority.reason", errors)
    if not all(_valid_text(t) for t in (title, reason)):
        errors.append("title and priority.reason must be plain text")

    if errors:
        raise OutputInvalid(errors)
    # Only values that passed every check reach the message (an int32 score, a year within
    # protobuf's range), so filling it cannot raise.
    assert category is not None and level is not None
    out.title = title
    if due is not None:
        out.due_time.CopyFrom(to_timestamp(due))
    out.category = category
    out.priority.level = level.name
    out.priority.score = priority.score
    out.priority.reason = reason
    return out


def parse_subtasks(content: str | None) -> list[str] | None:
    """Checked subtasks: a list of 3-7 steps, or None when the model judged the task atomic
    (``null`` or an empty list). Total: raises :class:`OutputInvalid` and nothing else."""
    try:
        return _parse_subtasks(content)
    except OutputInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - the validator must be total (issue 10.2)
        raise OutputInvalid(
            [f"the answer could not be checked ({type(exc).__name__}); reply with one JSON object"]
        ) from None


def _parse_subtasks(content: str | None) -> list[str] | None:
    data = extract_json(content)
    try:
        answer = SubtasksAnswer.model_validate(data)
    except ValidationError as exc:
        raise OutputInvalid(_pydantic_errors(exc)) from None
    if not answer.subtasks:
        return None
    errors: list[str] = []
    low, high = SUBTASK_COUNT
    if not low <= len(answer.subtasks) <= high:
        errors.append(
            f"subtasks must have {low}-{high} items or be null (got {len(answer.subtasks)})"
        )
    steps = [
        _phrase(step, f"subtasks[{i}]", SUBTASK_WORDS, errors)
        for i, step in enumerate(answer.subtasks[: high + 1])
    ]
    if len({s.casefold() for s in steps}) != len(steps):
        errors.append("subtasks must be distinct")
    if any(_PLACEHOLDER.match(s) for s in steps):
        # Small models copy a prompt's example list verbatim (issue 14.6).
        errors.append("subtasks must be this task's own steps, not placeholders like 'Step One'")
    if not all(_valid_text(s) for s in steps):
        errors.append("subtasks must be plain text")
    if errors:
        raise OutputInvalid(errors)
    return steps
