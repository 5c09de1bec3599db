"""Input rules of parse-task, applied before a job is queued so a bad request is a 400
rather than a failed job, and so the worker only ever sees normalised input."""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from taskmesh.capabilities.text_limits import ALLOWED_CONTROLS, MAX_TEXT_CHARS, is_blank
from taskmesh.errors import FieldViolation, InvalidInput
from taskmesh.jobs.v1 import jobs_pb2

from .config import SCORE_MAX, SCORE_MIN, default_config, is_empty

__all__ = ["MAX_TEXT_CHARS", "validate_input"]

MAX_NAME_CHARS = 40
MAX_CATEGORIES = 50
MAX_LEVELS = 20


def validate_input(msg: jobs_pb2.ParseTaskInput) -> jobs_pb2.ParseTaskInput:
    """A normalised copy of ``msg``, or :class:`InvalidInput` naming every broken rule.

    An empty config becomes the default one, and an unset reference time becomes now:
    a job retried hours later must still resolve "tomorrow" to the submitter's tomorrow.
    """
    out = jobs_pb2.ParseTaskInput()
    out.CopyFrom(msg)
    violations: list[FieldViolation] = []

    text, problem = _normalise_text(msg.natural_language)
    if problem:
        violations.append(FieldViolation("natural_language", problem))
    else:
        out.natural_language = text

    if is_empty(msg.config):
        out.config.CopyFrom(default_config())
    else:
        normalised, problems = _checked_config(msg.config.SerializeToString(deterministic=True))
        out.config.CopyFrom(normalised)
        violations.extend(problems)

    if not msg.HasField("reference_time"):
        out.reference_time.FromDatetime(datetime.now(UTC).replace(microsecond=0))

    if violations:
        raise InvalidInput("; ".join(f"{v.field}: {v.description}" for v in violations), violations)
    return out


def _normalise_text(raw: str) -> tuple[str, str | None]:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text or is_blank(text):
        return text, "must not be empty or only whitespace"
    if len(text) > MAX_TEXT_CHARS:
        return text, f"must be at most {MAX_TEXT_CHARS} characters (got {len(text)})"
    bad = _first_control_char(text)
    if bad is not None:
        return text, (
            f"must not contain control characters (found U+{ord(bad):04X}); "
            "only newlines and tabs are allowed"
        )
    return text, None


def _first_control_char(text: str) -> str | None:
    # Format characters (Unicode category Cf) are text: the zero-width non-joiner of Persian and
    # Indic scripts, the direction marks of Hebrew and Arabic, the soft hyphen, the joiner and
    # tag characters of emoji sequences (SPEC §5). Invisible characters used to hide an attack
    # are the injection screen's business, answered as an injection, never as a rule named here.
    for char in text:
        if char in ALLOWED_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            return char
    return None


def _check_name(value: str, field: str) -> tuple[str, FieldViolation | None]:
    name = value.strip()
    if not name:
        return name, FieldViolation(field, "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        return name, FieldViolation(field, f"must be at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        return name, FieldViolation(field, "must not contain control characters")
    return name, None


# Most jobs carry the same few configs (the default one, a client's own): each distinct one
# is checked once. Keyed by its deterministic serialisation, which two configs share only
# when every field (unknown ones included) is equal. Callers copy the message, never edit it.
@lru_cache(maxsize=256)
def _checked_config(
    raw: bytes,
) -> tuple[jobs_pb2.ParseTaskConfig, tuple[FieldViolation, ...]]:
    config = jobs_pb2.ParseTaskConfig.FromString(raw)
    out = jobs_pb2.ParseTaskConfig()
    out.CopyFrom(config)
    return out, tuple(_check_config(config, out))


def _check_config(
    config: jobs_pb2.ParseTaskConfig, out: jobs_pb2.ParseTaskConfig
) -> list[FieldViolation]:
    violations: list[FieldViolation] = []

    if not config.categories:
        violations.append(FieldViolation("config.categories", "must list at least one category"))
    elif len(config.categories) > MAX_CATEGORIES:
        violations.append(
            FieldViolation("config.categories", f"must list at most {MAX_CATEGORIES} categories")
        )
    seen: set[str] = set()
    for i, raw in enumerate(config.categories):
        name, problem = _check_name(raw, f"config.categories[{i}]")
        if problem:
            violations.append(problem)
        elif name.casefold() in seen:
            violations.append(FieldViolation(f"config.categories[{i}]", f"duplicate {name!r}"))
        else:
            out.categories[i] = name
        seen.add(name.casefold())

    levels = config.priority_levels
    if not levels:
        violations.append(
            FieldViolation("config.priority_levels", "must list at least one priority level")
        )
    elif len(levels) > MAX_LEVELS:
        violations.append(
            FieldViolation("config.priority_levels", f"must list at most {MAX_LEVELS} levels")
        )
    seen.clear()
    for i, level in enumerate(levels):
        field = f"config.priority_levels[{i}]"
        name, problem = _check_name(level.name, f"{field}.name")
        if problem:
            violations.append(problem)
        elif name.casefold() in seen:
            violations.append(FieldViolation(f"{field}.name", f"duplicate {name!r}"))
        else:
            out.priority_levels[i].name = name
        seen.add(name.casefold())
        if not SCORE_MIN <= level.min_score <= level.max_score <= SCORE_MAX:
            violations.append(
                FieldViolation(
                    field,
                    f"score range {level.min_score}-{level.max_score} must satisfy "
                    f"{SCORE_MIN} <= min_score <= max_score <= {SCORE_MAX}",
                )
            )
    violations.extend(_overlaps(levels))
    return violations


def _overlaps(levels: Sequence[jobs_pb2.PriorityLevel]) -> list[FieldViolation]:
    # Overlapping ranges would make a score's level ambiguous to the client.
    ordered = sorted(enumerate(levels), key=lambda item: (item[1].min_score, item[1].max_score))
    out: list[FieldViolation] = []
    for (_, prev), (j, cur) in itertools.pairwise(ordered):
        if cur.min_score <= prev.max_score:
            out.append(
                FieldViolation(
                    f"config.priority_levels[{j}]",
                    f"score range of {cur.name!r} overlaps the range of {prev.name!r}",
                )
            )
    return out
