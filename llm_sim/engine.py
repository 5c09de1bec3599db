"""The simulator's stand-in for a model: reads the same prompts a real model gets and
answers them with keyword rules, deterministically, so tests and benchmarks can predict
every answer."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from typing import Any

import regex

from taskmesh.capabilities.llm_calls import MERGED_SENTENCE_HEADING
from taskmesh.capabilities.parse_task.config import DEFAULT_CATEGORIES, DEFAULT_LEVELS
from taskmesh.capabilities.parse_task.schema import (
    CORE_SCHEMA_NAME,
    SUBTASKS_SCHEMA_NAME,
    is_unspaced,
    normalise_case,
    title_case,
)

from .dates import resolve

_NOW = re.compile(r"^Current UTC time:\s*(\S+)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^## (?P<name>.+?)\s*$(?P<body>.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
_BULLET = re.compile(r"^- (.+?)\s*$", re.MULTILINE)
_LEVEL = re.compile(r"^- (.+?): scores (\d+) to (\d+)\s*$", re.MULTILINE)
# Letters and digits of any script: Cyrillic, Arabic or Hangul words are words too. Marks
# (Thai vowels and tones, Indic signs) and format characters (ZWNJ in Persian "می‌خواهم", soft
# hyphens, ZWJ) belong to the word they sit in: Unicode's word-boundary rule WB4 (UAX #29).
_WORD = regex.compile(r"[^\W_](?:[\w'&/.+-]|[\p{M}\p{Cf}])*")
# Particles a date phrase leaves behind in scripts without spaces ("下周五之前…", "…までに").
_CJK_PARTICLES = re.compile(
    r"^(?:之前|以前|前|までに|まで|に|には|の)+|(?:之前|以前|までに|まで)+$"
)

_FILLER = re.compile(
    r"^(?:(?:urgent|important|asap|reminder|todo|to do|note)\s*[:!-]+\s*|please\s+"
    r"|(?:i|we)\s+(?:need|have|want|ought)\s+to\s+|(?:i|we)\s+(?:must|should)\s+"
    r"|(?:remember|don't forget|do not forget|need|have)\s+to\s+|remind me to\s+)+",
    re.IGNORECASE,
)
_ARTICLES = frozenset({"a", "an", "the"})
_ADVERBS = frozenset({"immediately", "urgently", "asap", "quickly", "please"})
_CUT_WORDS = frozenset({"for", "at", "in", "on", "to", "about", "from", "before", "after"})
_TRAILING_WORDS = frozenset({"by", "on", "before", "until", "due", "for", "and", "the", "a", "at"})

_PRONOUNS = frozenset({"it", "this", "that", "them", "these", "those", "him", "her", "something"})
_GENERIC = _PRONOUNS | frozenset(
    {
        "stuff",
        "things",
        "thing",
        "anything",
        "everything",
        "some",
        "out",
        "up",
        "on",
        "care",
        "of",
        "all",
        "whatever",
        "more",
        "work",
    }
)


_OTHER_LANGUAGES: dict[str, tuple[str, ...]] = {
    "finance": ("factura", "facture", "loyer", "alquiler", "rechnung", "miete", "bolletta",
                "affitto", "счёт", "аренд", "电费", "房租", "電気代", "家賃", "ค่าไฟ", "요금",
                "فاتورة"),
    "work": ("informe", "rapport", "bericht", "rapporto", "отчёт", "报告", "報告", "销售"),
    "health": ("médico", "médecin", "arzt", "medico", "врач", "医生", "医者", "病院"),
}  # fmt: skip


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


CATEGORY_KEYWORDS: dict[str, frozenset[str]] = {
    "finance": _set(
        "bill bills pay payment tax taxes invoice bank rent insurance budget expense expenses "
        "salary mortgage loan refund electricity"
    ),
    "health": _set(
        "dentist doctor gym workout medication medicine pharmacy therapy therapist checkup "
        "physio vaccine hospital yoga clinic prescription"
    ),
    "work": _set(
        "report meeting launch team teams client clients project presentation manager office "
        "product company colleague colleagues proposal quarterly q1 q2 q3 q4 sales marketing "
        "engineering deadline stakeholders outage production server deploy release bug"
    ),
    "errand": _set(
        "groceries grocery pickup pick-up errand errands shop shopping store post mail parcel "
        "package laundry dry-cleaning"
    ),
}
_ERRAND_PHRASES = ("pick up", "drop off", "post office", "dry cleaning")
_CATEGORY_ORDER = ("finance", "health", "work", "errand")
_FALLBACK_CATEGORY = "personal"

_CRITICAL_WORDS = frozenset({"critical", "emergency", "immediately", "outage", "overdue"})
_HIGH_WORDS = frozenset({"urgent", "asap", "important", "launch", "deadline", "tax", "taxes"})
_BASE_TIER = {"work": 1, "finance": 1, "health": 1}
_REASONS = (
    "Little is lost if this waits a while.",
    "Worth doing soon, though a short delay costs little.",
    "It matters and delaying it would be costly.",
    "Critical: any delay would cause serious harm.",
)

_REPORT_VERBS = frozenset({"submit", "write", "prepare", "draft", "finish", "complete", "create"})
_REPORT_NOUNS = frozenset(
    {"report", "proposal", "presentation", "paper", "thesis", "essay", "document", "deck"}
)
_PLAN_VERBS = frozenset(
    {"plan", "organize", "organise", "arrange", "host", "coordinate", "execute", "prepare"}
)
_ALIGN_VERBS = frozenset({"coordinate", "align", "sync", "meet"})
_ITEM_VERBS = {
    "approval": "Secure",
    "approvals": "Secure",
    "booking": "Complete",
    "bookings": "Complete",
    "coordination": "Finalize",
    "planning": "Finalize",
    "catering": "Arrange",
    "invitations": "Send",
    "tickets": "Buy",
}
_PLAN_STEPS = (
    "Set Goals and Budget",
    "Research Options",
    "Choose Dates and Location",
    "Make the Bookings",
    "Confirm Final Details",
)
_LAUNCH_STEPS = (
    "Finalize Launch Plan",
    "Prepare Launch Materials",
    "Brief the Team",
    "Run the Launch",
    "Review Launch Results",
)


@dataclass
class PromptConfig:
    now: datetime
    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    levels: list[tuple[str, int, int]] = field(default_factory=lambda: list(DEFAULT_LEVELS))


def read_core_prompt(system: str) -> PromptConfig:
    """What a model would take from the core prompt: the clock and the vocabulary."""
    clock, categories, levels = _read_core_prompt(system)
    return PromptConfig(
        now=clock or datetime.now(UTC), categories=list(categories), levels=list(levels)
    )


#: Distinct core prompts remembered: the prompt carries the submission's second, so a burst's
#: calls share a few dozen texts (the worker renders it once per second and config, too).
CORE_PROMPTS_KEPT = 64


@lru_cache(maxsize=CORE_PROMPTS_KEPT)
def _read_core_prompt(
    system: str,
) -> tuple[datetime | None, tuple[str, ...], tuple[tuple[str, int, int], ...]]:
    """The prompt's clock (None without a readable one: the caller takes now), categories
    and levels."""
    now = None
    match = _NOW.search(system)
    if match:
        with contextlib.suppress(ValueError):
            now = datetime.fromisoformat(match.group(1)).astimezone(UTC)
    # Only the clock changes from job to job; the vocabulary is read once per prompt text.
    start = system.find("\n## ")
    categories, levels = _read_vocabulary(system[start:] if start >= 0 else "")
    return now, categories, levels


@lru_cache(maxsize=64)
def _read_vocabulary(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, int, int], ...]]:
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    levels: tuple[tuple[str, int, int], ...] = DEFAULT_LEVELS
    for section in _SECTION.finditer(text):
        name, body = section.group("name").casefold(), section.group("body")
        if name.startswith("categories"):
            categories = tuple(m.group(1) for m in _BULLET.finditer(body)) or categories
        elif name.startswith("priority levels"):
            found = tuple(
                (m.group(1), int(m.group(2)), int(m.group(3))) for m in _LEVEL.finditer(body)
            )
            levels = found or levels
    return categories, levels


def classify_request(body: dict[str, Any]) -> str:
    """``core``, ``subtasks`` or ``other``, from the schema name, else the prompt's text."""
    response_format = body.get("response_format") or {}
    if isinstance(response_format, dict):
        schema = response_format.get("json_schema") or {}
        name = schema.get("name") if isinstance(schema, dict) else None
        if name == CORE_SCHEMA_NAME:
            return "core"
        if name == SUBTASKS_SCHEMA_NAME:
            return "subtasks"
    system = system_prompt(body.get("messages") or [])
    if _NOW.search(system):
        return "core"
    if "subtask" in system.casefold():
        return "subtasks"
    return "other"


_MERGED = f"\n\n{MERGED_SENTENCE_HEADING}\n\n"


def _first_user(messages: list[Any]) -> str:
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def system_prompt(messages: list[Any]) -> str:
    """The instructions: the system (or developer) messages, or, for a model without a
    system role, the part of the first user message before the sentence."""
    system = "\n".join(
        _text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    )
    if system:
        return system
    first = _first_user(messages)
    return first.rsplit(_MERGED, 1)[0] if _MERGED in first else ""


def user_sentence(messages: list[Any]) -> str:
    """The task sentence: the first user turn, since later ones are the caller's
    corrections of an earlier answer."""
    first = _first_user(messages)
    return first.rsplit(_MERGED, 1)[1] if _MERGED in first else first


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


# --- reading the sentence -------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What the rules take from a sentence. Shared by the answers that read the same
    sentence on the same day (:func:`read_sentence` caches it): never changed once made."""

    due: date | None
    words: list[str]  # the action phrase, dates and fillers removed
    items: list[str]  # parts listed in a "with X, Y, and Z" clause
    text: str  # the whole sentence, lower case

    @property
    def verb(self) -> str:
        return self.words[0].lower() if self.words else ""

    @cached_property
    def tokens(self) -> frozenset[str]:
        """The words of :attr:`text`, and the parts of its hyphenated words."""
        return frozenset(_tokens(self.text))


#: Readings remembered: a job's core and subtasks calls read the same sentence, arriving
#: together, so the second one finds the first one's reading.
READINGS_KEPT = 1024


@lru_cache(maxsize=READINGS_KEPT)
def read_sentence(sentence: str, today: date) -> Reading:
    """The reading of ``sentence`` with its dates resolved against ``today``; cached, so
    the same object for the same arguments (do not change it)."""
    due = resolve(sentence, today)
    kept, last = [], 0
    for start, end in due.spans:
        kept.append(sentence[last:start])
        last = max(last, end)
    kept.append(sentence[last:])
    text = " ".join(" ".join(kept).split())
    text = _FILLER.sub("", text.strip(" .!?;:,"))
    head, tail = _split_with(text)
    items = _list_items(tail)
    if len(items) < 2:
        # "Lunch with Sarah" names a companion, not parts of the work.
        head, items = text, []
    words = [w for w in _WORD.findall(head) if w.lower() not in _ADVERBS]
    while words and words[-1].lower() in _TRAILING_WORDS:
        words.pop()
    return Reading(due.day, words, items, sentence.lower())


def _split_with(text: str) -> tuple[str, str]:
    parts = re.split(r"\s+with\s+", text, maxsplit=1, flags=re.IGNORECASE)
    return (parts[0], parts[1]) if len(parts) == 2 else (text, "")


def _list_items(tail: str) -> list[str]:
    if not tail:
        return []
    raw = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", tail.strip(" .!?;:"))
    items = []
    for item in raw:
        words = [w for w in _WORD.findall(item) if w.lower() not in _ARTICLES]
        if words:
            items.append(" ".join(words[:6]))
    return items[:5]


def _unspaced_title(reading: Reading) -> str | None:
    """The title of a sentence in a script without spaces: its text without the date
    phrase, 2-30 characters (SPEC §10); None when it is not such a sentence."""
    text = "".join(reading.words)
    if not is_unspaced(text):
        return None
    return _CJK_PARTICLES.sub("", text)[:30]


def vague_reason(reading: Reading) -> tuple[str, list[str]] | None:
    unspaced = _unspaced_title(reading)
    if unspaced is not None:
        if len(unspaced) >= 2:
            return None
        return (
            "The request is too short to tell what should be done.",
            ["What exactly do you want to do?", "Is there a deadline?"],
        )
    words = [w.lower() for w in reading.words]
    if len(words) < 2:
        return (
            "The request is too short to tell what should be done.",
            ["What exactly do you want to do?", "Is there a deadline?"],
        )
    objects = words[1:]
    pronouns = [w for w in objects if w in _PRONOUNS and w != "something"]
    if all(w in _GENERIC for w in objects):
        if pronouns:
            return (
                f'The request does not say what "{pronouns[0]}" refers to.',
                [f"What do you want to {words[0]}?", "Where or for whom is it?"],
            )
        return (
            "The request is too generic to become a task: it names no concrete goal.",
            [f"What exactly do you want to {words[0]}?", "When does it need to be done?"],
        )
    return None


def category_for(reading: Reading, categories: list[str]) -> str:
    by_name = {c.casefold(): c for c in categories}
    tokens = reading.tokens
    best, best_score = None, 0
    for name in _CATEGORY_ORDER:
        if name not in by_name:
            continue
        score = len(tokens & CATEGORY_KEYWORDS[name])
        if name == "errand":
            score += sum(phrase in reading.text for phrase in _ERRAND_PHRASES)
        # Other languages, as substrings: words in scripts without spaces are not tokens.
        score += sum(word in reading.text for word in _OTHER_LANGUAGES.get(name, ()))
        if score > best_score:
            best, best_score = by_name[name], score
    if best is not None:
        return best
    return by_name.get(_FALLBACK_CATEGORY, categories[0] if categories else _FALLBACK_CATEGORY)


def _tokens(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [part for w in words if "-" in w for part in w.split("-")]


def priority_for(
    reading: Reading, category: str, levels: list[tuple[str, int, int]], today: date
) -> dict[str, Any]:
    tokens = reading.tokens
    tier = _BASE_TIER.get(category.casefold(), 0)
    if tokens & _HIGH_WORDS:
        tier = max(tier, 2)
    if tokens & _CRITICAL_WORDS:
        tier = 3
    if reading.due is not None and (reading.due - today).days <= 1:
        tier = min(3, tier + 1)
    ordered = sorted(levels, key=lambda lvl: (lvl[1], lvl[2]))
    name, low, high = ordered[round(tier * (len(ordered) - 1) / 3)]
    return {"level": name, "score": low + (high - low) // 2, "reason": _REASONS[tier]}


def title_for(reading: Reading) -> str:
    unspaced = _unspaced_title(reading)
    if unspaced is not None:
        return unspaced
    words = list(reading.words)
    if len(words) > 8:
        words = [w for i, w in enumerate(words) if i == 0 or w.lower() not in _ARTICLES]
    if len(words) > 8:
        cut = next(
            (i for i, w in enumerate(words) if i >= 2 and w.lower() in _CUT_WORDS), len(words)
        )
        words = words[:cut]
    words = words[:8]
    while len(words) > 2 and words[-1].lower() in _TRAILING_WORDS:
        words.pop()
    return normalise_case(" ".join(words))


def subtasks_for(reading: Reading) -> list[str] | None:
    if vague_reason(reading) is not None:
        return None
    verb, lower = reading.verb, {w.lower() for w in reading.words}
    launch = "launch" in lower
    if len(reading.items) >= 2:
        if verb in _ALIGN_VERBS:
            middle = [f"Align With {item}" for item in reading.items]
        else:
            middle = [f"{_item_verb(item)} {item}" for item in reading.items]
        first, last = (
            (_LAUNCH_STEPS[0], _LAUNCH_STEPS[-1])
            if launch
            else (
                "Define Scope and Goals",
                "Confirm Final Details",
            )
        )
        return [title_case(s) for s in [first, *middle, last]][:7]
    if launch and verb in _PLAN_VERBS | {"launch"}:
        return list(_LAUNCH_STEPS)
    nouns = [w for w in reading.words[1:] if w.lower() not in _ARTICLES]
    if verb in _REPORT_VERBS and lower & _REPORT_NOUNS:
        noun = title_case(" ".join(nouns[:3]))
        return [
            f"Gather Data for {noun}",
            f"Write {noun} Draft",
            f"Review {noun} Draft",
            f"Submit Final {noun}",
        ]
    if verb in _PLAN_VERBS:
        return list(_PLAN_STEPS)
    return None


def _item_verb(item: str) -> str:
    return _ITEM_VERBS.get(item.split()[-1].lower(), "Arrange")


# --- answers ----------------------------------------------------------------------------------


def answer_core(sentence: str, config: PromptConfig) -> dict[str, Any]:
    today = config.now.date()
    reading = read_sentence(sentence, today)
    vague = vague_reason(reading)
    if vague is not None:
        reason, suggestions = vague
        return {
            "result": "vague",
            "task": None,
            "error": {"reason": reason, "suggestions": suggestions},
        }
    category = category_for(reading, config.categories)
    due = f"{reading.due.isoformat()}T00:00:00Z" if reading.due else None
    return {
        "result": "task",
        "task": {
            "title": title_for(reading),
            "dueDate": due,
            "category": category,
            "priority": priority_for(reading, category, config.levels, today),
        },
        "error": None,
    }


def answer_subtasks(sentence: str, today: date) -> dict[str, Any]:
    return {"subtasks": subtasks_for(read_sentence(sentence, today))}


def answer(kind: str, messages: list[Any], today: date | None = None) -> str:
    """The assistant message's content for one chat request. ``today``: the date the
    subtasks prompt's dates resolve against (default: today in UTC); the core prompt
    carries its own clock."""
    sentence = user_sentence(messages)
    if kind == "core":
        clock, categories, levels = _read_core_prompt(system_prompt(messages))
        return _core_content(sentence, (clock or datetime.now(UTC)).date(), categories, levels)
    if kind == "subtasks":
        return _subtasks_content(sentence, today or datetime.now(UTC).date())
    return "OK"


# An answer depends only on these arguments (the clock only through its date): a caller
# repeating a sentence, as load tests and retries do, gets it without reading it again.
@lru_cache(maxsize=1024)
def _core_content(
    sentence: str,
    today: date,
    categories: tuple[str, ...],
    levels: tuple[tuple[str, int, int], ...],
) -> str:
    config = PromptConfig(
        now=datetime(today.year, today.month, today.day, tzinfo=UTC),
        categories=list(categories),
        levels=list(levels),
    )
    return json.dumps(answer_core(sentence, config), separators=(",", ":"))


@lru_cache(maxsize=1024)
def _subtasks_content(sentence: str, today: date) -> str:
    return json.dumps(answer_subtasks(sentence, today), separators=(",", ":"))
