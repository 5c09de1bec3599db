"""Relative-date phrases the simulator understands, resolved the way the core prompt
tells a real model to resolve them."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a": 1,
    "a couple of": 2,
}
_FRIDAY = 4

# Words before a date phrase that belong to it ("by next Friday"), matched backwards from
# the phrase: leading them into every pattern would make each scan much slower.
_LEAD = re.compile(
    r"(?:\b(?:by|on|before|until|due|for|this coming|this|next|the)\s+)+$", re.IGNORECASE
)
_WEEKDAY = "|".join(WEEKDAYS)
_MONTH = "|".join(m[:3] + f"(?:{m[3:]})?" if len(m) > 3 else m for m in MONTHS)
_COUNT = r"\d+|" + "|".join(sorted(_NUMBERS, key=len, reverse=True))

# Order matters: longer phrases first, so "day after tomorrow" is not read as "tomorrow".
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(rf"\b{body}\b", re.IGNORECASE))
    for name, body in (
        ("after_tomorrow", r"(?:the\s+)?day after tomorrow"),
        ("today", r"(?:today|tonight|this (?:morning|afternoon|evening))"),
        ("tomorrow", r"tomorrow(?: (?:morning|afternoon|evening|night))?"),
        ("in_n", rf"in (?P<n>{_COUNT}) (?P<unit>days?|weeks?)"),
        ("end_month", r"(?:the )?end of (?:the |this )?month"),
        ("end_week", r"(?:the )?end of (?:the |this )?week"),
        ("next_week", r"next week"),
        ("next_month", r"next month"),
        ("iso", r"(?P<iso>\d{4}-\d{2}-\d{2})"),
        ("month_day", rf"(?P<month>{_MONTH})\.? (?P<day>\d{{1,2}})(?:st|nd|rd|th)?"),
        ("weekday", rf"(?P<weekday>{_WEEKDAY})"),
    )
]
VAGUE_TIME = re.compile(
    r"\b(?:soon|eventually|sometime|someday|some day|later|one day|at some point|"
    r"whenever|in the future|asap)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DueDate:
    day: date | None
    spans: list[tuple[int, int]]  # where date phrases sit in the sentence, to drop from titles


def resolve(sentence: str, today: date) -> DueDate:
    spans: list[tuple[int, int]] = []
    found: date | None = None
    for name, pattern in _PATTERNS:
        for match in pattern.finditer(sentence):
            if any(a < match.end() and match.start() < b for a, b in spans):
                continue
            day = _resolve_one(name, match, today)
            if day is None:
                continue
            lead = _LEAD.search(sentence, 0, match.start())
            spans.append((lead.start() if lead else match.start(), match.end()))
            found = found or day
    for match in VAGUE_TIME.finditer(sentence):
        spans.append(match.span())
    return DueDate(found, sorted(spans))


def _resolve_one(name: str, match: re.Match[str], today: date) -> date | None:
    weekday = today.weekday()
    if name == "after_tomorrow":
        return today + timedelta(days=2)
    if name == "today":
        return today
    if name == "tomorrow":
        return today + timedelta(days=1)
    if name == "in_n":
        raw = match.group("n").lower()
        count = int(raw) if raw.isdigit() else _NUMBERS[raw]
        per = 7 if match.group("unit").lower().startswith("week") else 1
        return today + timedelta(days=count * per)
    if name == "end_month":
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    if name == "end_week":
        return today + timedelta(days=(_FRIDAY - weekday) % 7)
    if name == "next_week":
        return today + timedelta(days=7 - weekday + _FRIDAY)
    if name == "next_month":
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return date(year, month, 15)
    if name == "iso":
        try:
            return date.fromisoformat(match.group("iso"))
        except ValueError:
            return None
    if name == "month_day":
        return _month_day(match.group("month"), int(match.group("day")), today)
    target = WEEKDAYS.index(match.group("weekday").lower())
    return today + timedelta(days=(target - weekday) % 7 or 7)


def _month_day(month_name: str, day: int, today: date) -> date | None:
    month = next(i for i, m in enumerate(MONTHS, 1) if m.startswith(month_name.lower()[:3]))
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None
