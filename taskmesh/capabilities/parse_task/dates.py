"""Relative dates in a sentence, resolved deterministically against the reference time by the
rules the core prompt gives the model (SPEC §10), in English, Spanish, French, German,
Italian, Russian, Chinese and Japanese. The handler uses it to check the model's ``dueDate``
(issue 14.6: "tomorrow" at 13:13 became "today at 13:13"), the simulator to answer.

Thai, Korean and Arabic phrases for today, tomorrow, the day after and the end of the month
are known too.

Rules (the prompt's): "today" is today; "tomorrow" the next day; a weekday name, with or
without "next"/"this"/"on"/"by", the first such weekday after today; "in N days/weeks" counts
from today; "next week" is the Friday of next week; "end of the week" the coming Friday;
"next month" the 15th of next month; "end of the month" its last day. Chinese 下周五 and
Japanese 来週の金曜日 name the weekday of next calendar week, which is what they mean.

A pure-regex resolver was chosen over ``dateparser``: that library resolves "next Friday" by
its own rule rather than the prompt's, finds phrases inside words in CJK text, and costs
milliseconds of CPU and a large import per call, against microseconds here."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
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
_FRIDAY = 4

# Number words for "in N days/weeks", every supported language.
_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "a": 1, "a couple of": 2,
    "un": 1, "una": 1, "uno": 1, "une": 1, "dos": 2, "tres": 3, "cuatro": 4, "deux": 2,
    "trois": 3, "quatre": 4, "ein": 1, "eine": 1, "einer": 1, "zwei": 2, "drei": 3, "vier": 4,
    "due": 2, "tre": 3, "quattro": 4, "одну": 1, "один": 1, "две": 2, "два": 2, "три": 3,
    "четыре": 4, "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5,
}  # fmt: skip
# Weekday names → 0 (Monday) .. 6, every supported language (case folded).
_WEEKDAY_NAMES: dict[str, int] = {
    **{name: i for i, name in enumerate(WEEKDAYS)},
    **{n: i for i, n in enumerate(("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"))},
    **{n: i for i, n in enumerate(("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"))},
    **{n: i for i, n in enumerate(("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"))},
    **{n: i for i, n in enumerate(("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"))},
    **{n: i for i, n in enumerate(("понедельник", "вторник", "среду", "четверг", "пятницу", "субботу", "воскресенье"))},
    "среда": 2, "пятница": 4, "суббота": 5,
}  # fmt: skip
_CJK_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_JA_WEEKDAY = {"月": 0, "火": 1, "水": 2, "木": 3, "金": 4, "土": 5, "日": 6}

_COUNT = r"\d+|" + "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True))
_WEEKDAY = "|".join(sorted(_WEEKDAY_NAMES, key=len, reverse=True))
_MONTH = "|".join(m[:3] + f"(?:{m[3:]})?" if len(m) > 3 else m for m in MONTHS)
_WEEK_UNIT = r"weeks?|semanas?|semaines?|wochen?|settimane?|settimana|недел[юиь]"
_DAY_UNIT = r"days?|días?|dias?|jours?|tag(?:en)?|giorn[oi]|д(?:ень|ня|ней)"

# Words before a date phrase that belong to it ("by next Friday"), matched backwards from
# the phrase, so the simulator can drop the whole phrase from a title.
_LEAD = re.compile(
    r"(?:\b(?:by|on|before|until|due|for|this coming|this|next|the|el|la|le|am|bis|до|в|к)\s+)+$",
    re.IGNORECASE,
)

Resolver = Callable[[re.Match[str], date], date | None]


def _plus(days: int) -> Resolver:
    return lambda _m, today: today + timedelta(days=days)


def _count(m: re.Match[str], today: date) -> date | None:
    raw = m.group("n").lower()
    count = int(raw) if raw.isdigit() else _NUMBERS.get(raw)
    if count is None or count > 3660:
        return None
    unit = (m.group("unit") or "").lower()
    per = 7 if re.match(_WEEK_UNIT + r"|周|週|星期|个星期|個星期", unit) else 1
    return today + timedelta(days=count * per)


def _end_of_month(_m: re.Match[str], today: date) -> date:
    return today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _end_of_week(_m: re.Match[str], today: date) -> date:
    return today + timedelta(days=(_FRIDAY - today.weekday()) % 7)


def _next_week(_m: re.Match[str], today: date) -> date:
    return today + timedelta(days=7 - today.weekday() + _FRIDAY)


def _next_month(_m: re.Match[str], today: date) -> date:
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    return date(year, month, 15)


def _coming(target: int, today: date) -> date:
    """The first such weekday after today (never today itself)."""
    return today + timedelta(days=(target - today.weekday()) % 7 or 7)


def _weekday(m: re.Match[str], today: date) -> date | None:
    target = _WEEKDAY_NAMES.get(m.group("weekday").lower())
    return None if target is None else _coming(target, today)


def _next_calendar_week(target: int, today: date) -> date:
    return today + timedelta(days=7 - today.weekday() + target)


def _zh_weekday(m: re.Match[str], today: date) -> date | None:
    target = _CJK_WEEKDAY[m.group("d")]
    return _next_calendar_week(target, today) if m.group("next") else _coming(target, today)


def _ja_weekday(m: re.Match[str], today: date) -> date | None:
    target = _JA_WEEKDAY[m.group("d")]
    return _next_calendar_week(target, today) if m.group("next") else _coming(target, today)


def _iso(m: re.Match[str], _today: date) -> date | None:
    try:
        return date.fromisoformat(m.group("iso"))
    except ValueError:
        return None


def _month_day(m: re.Match[str], today: date) -> date | None:
    name = m.group("month").lower()[:3]
    month = next(i for i, full in enumerate(MONTHS, 1) if full.startswith(name))
    day = int(m.group("day"))
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def _b(body: str) -> str:
    """A phrase between word boundaries (scripts with spaces)."""
    return rf"(?<![\w-]){body}(?![\w-])"


# Order matters: longer phrases first, so "day after tomorrow" is not read as "tomorrow".
_RULES: list[tuple[str, str, Resolver]] = [
    # after tomorrow
    (
        "after_tomorrow",
        _b(
            r"(?:the\s+)?day after tomorrow|pasado\s+mañana|après-demain"
            r"|übermorgen|dopodomani|послезавтра"
        ),
        _plus(2),
    ),
    ("after_tomorrow", r"后天|後天|明後日|あさって|มะรืนนี้|(?<!\w)모레|(?<!\w)بعد غد", _plus(2)),
    # today
    (
        "today",
        _b(
            r"today|tonight|this (?:morning|afternoon|evening)|hoy|aujourd'hui|ce soir"
            r"|heute|oggi|stasera|сегодня"
        ),
        _plus(0),
    ),
    ("today", r"今天|今晚|今日|今夜|วันนี้|(?<!\w)오늘|(?<!\w)اليوم(?!\w)", _plus(0)),
    # tomorrow ("mañana" after "la"/"por la" is "the morning", not tomorrow)
    (
        "tomorrow",
        _b(
            r"tomorrow(?: (?:morning|afternoon|evening|night))?|(?<!la )mañana"
            r"|demain|morgen|domani|завтра"
        ),
        _plus(1),
    ),
    # Korean particles attach to the word ("내일까지"); Arabic "غداً" is not "غداء" (lunch).
    (
        "tomorrow",
        r"明天|明日|あした|あす|พรุ่งนี้|(?<!\w)내일|(?<!\w)غد(?:اً|ًا|ا)?(?![\u0621-\u064a])",
        _plus(1),
    ),
    # in N days / weeks
    (
        "in_n",
        _b(
            rf"(?:in|en|dentro de|dans|tra|fra|через) (?P<n>{_COUNT}) "
            rf"(?P<unit>{_WEEK_UNIT}|{_DAY_UNIT})"
        ),
        _count,
    ),
    (
        "in_n",
        r"(?P<n>\d+|[一两二三四五])\s*(?P<unit>个星期|個星期|周|週間|星期|天|日)(?:后|後|以内|内)",
        _count,
    ),
    # end of the month / week
    (
        "end_month",
        _b(
            r"(?:the )?end of (?:the |this )?month|(?:a |al )?fin(?:al)? (?:de|del) mes"
            r"|(?:à la )?fin (?:du|de ce) mois|ende des monats|monatsende|fine (?:del )?mese"
            r"|конц[ае] месяца"
        ),
        _end_of_month,
    ),
    ("end_month", r"本?月底|月末|今月末|สิ้นเดือน|월말|이번 달 말|نهاية الشهر", _end_of_month),
    (
        "end_week",
        _b(
            r"(?:the )?end of (?:the |this )?week|fin de (?:la )?semaine"
            r"|ende der woche|fine settimana|конц[ае] недели"
        ),
        _end_of_week,
    ),
    ("end_week", r"周末|週末", _end_of_week),
    # weekday of next calendar week (CJK), before "next week"
    ("weekday", r"(?P<next>下(?:个)?(?:周|星期|礼拜))(?P<d>[一二三四五六日天])", _zh_weekday),
    ("weekday", r"(?P<next>)(?:周|星期|礼拜)(?P<d>[一二三四五六日天])", _zh_weekday),
    ("weekday", r"(?P<next>来週の?)(?P<d>[月火水木金土日])曜(?:日)?", _ja_weekday),
    ("weekday", r"(?P<next>)(?P<d>[月火水木金土日])曜日", _ja_weekday),
    # next week / next month
    (
        "next_week",
        _b(
            r"next week|(?:la )?(?:próxima semana|semana que viene)|la semaine prochaine"
            r"|nächste woche|la settimana prossima|la prossima settimana|на следующей неделе"
            r"|следующей неделе"
        ),
        _next_week,
    ),
    ("next_week", r"下周|下星期|下个星期|来週", _next_week),
    (
        "next_month",
        _b(
            r"next month|(?:el )?próximo mes|(?:el )?mes que viene|le mois prochain"
            r"|nächsten monat|il mese prossimo|il prossimo mese|в следующем месяце"
        ),
        _next_month,
    ),
    ("next_month", r"下个月|下個月|来月", _next_month),
    # explicit dates
    ("iso", r"(?<!\d)(?P<iso>\d{4}-\d{2}-\d{2})(?!\d)", _iso),
    ("month_day", _b(rf"(?P<month>{_MONTH})\.? (?P<day>\d{{1,2}})(?:st|nd|rd|th)?"), _month_day),
    # weekday names of spaced scripts
    ("weekday", _b(rf"(?P<weekday>{_WEEKDAY})"), _weekday),
]
_PATTERNS = [(name, re.compile(body, re.IGNORECASE), fn) for name, body, fn in _RULES]

VAGUE_TIME = re.compile(
    r"\b(?:soon|eventually|sometime|someday|some day|later|one day|at some point|"
    r"whenever|in the future|asap|pronto|bientôt|bald|presto|скоро)\b|不久|以后|そのうち|いつか",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DueDate:
    """What the sentence says about its deadline.

    ``day``: the first date phrase's day (None when there is none); ``candidates``: every
    distinct day the sentence's phrases name, in order; ``spans``: where date phrases (and
    vague time words) sit, for the simulator to drop them from titles."""

    day: date | None
    spans: list[tuple[int, int]]
    candidates: tuple[date, ...] = ()

    @property
    def unambiguous(self) -> bool:
        """Exactly one date is named."""
        return len(self.candidates) == 1


def resolve(sentence: str, today: date) -> DueDate:
    """The dates ``sentence`` names, resolved against ``today`` (the reference day, UTC).
    Never raises for any text."""
    spans: list[tuple[int, int]] = []
    found: list[tuple[int, date]] = []
    for _name, pattern, resolver in _PATTERNS:
        for match in pattern.finditer(sentence):
            if any(a < match.end() and match.start() < b for a, b in spans):
                continue
            try:
                day = resolver(match, today)
            except (ValueError, OverflowError, KeyError):
                day = None
            if day is None:
                continue
            lead = _LEAD.search(sentence, 0, match.start())
            spans.append((lead.start() if lead else match.start(), match.end()))
            found.append((match.start(), day))
    for match in VAGUE_TIME.finditer(sentence):
        if not any(a < match.end() and match.start() < b for a, b in spans):
            spans.append(match.span())
    ordered = [day for _, day in sorted(found, key=lambda item: item[0])]
    candidates = tuple(dict.fromkeys(ordered))
    return DueDate(ordered[0] if ordered else None, sorted(spans), candidates)


@dataclass(frozen=True)
class DueCheck:
    """The outcome of checking a model's due day against the sentence: ``day`` is the day to
    keep (None for no due date), ``corrected`` says the model's was replaced, ``error`` is set
    when the sentence names several days and the model's is none of them."""

    day: date | None
    corrected: bool = False
    error: str | None = None


def check_due_day(model_day: date | None, sentence: str, today: date) -> DueCheck:
    """Checks the model's due day against the dates ``sentence`` names (issue 14.6).

    No date phrase: the model's answer stands (nothing to check it against). One day named:
    that day, correcting the model when it differs. Several: the model's must be one of them,
    else ``error`` says which days the sentence names, for the corrective call."""
    named = resolve(sentence, today)
    if not named.candidates:
        return DueCheck(model_day)
    if named.unambiguous:
        expected = named.candidates[0]
        return DueCheck(expected, corrected=model_day != expected)
    if model_day in named.candidates:
        return DueCheck(model_day)
    listed = " or ".join(day.isoformat() for day in named.candidates)
    got = model_day.isoformat() if model_day else "null"
    return DueCheck(
        model_day,
        error=f"dueDate must be one of the days the sentence names ({listed}); got {got}",
    )
