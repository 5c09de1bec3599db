"""Relative dates in a sentence, resolved deterministically against the reference time by the
rules the core prompt gives the model (SPEC §10), in English, Spanish, French, German,
Italian, Russian, Chinese and Japanese. The handler uses it to check the model's ``dueDate``
(issue 14.6: "tomorrow" at 13:13 became "today at 13:13"), the simulator to answer.

Thai, Korean and Arabic phrases for today, tomorrow, the day after, weekdays ("วันศุกร์หน้า",
"다음 주 금요일", "الجمعة القادمة"), "in N days/weeks" ("ภายในสองสัปดาห์", "2주 후",
"بعد أسبوعين"), next week/month and the end of the month are known too: every supported
language has all four kinds the evaluation checks (tomorrow, next Friday, in two weeks, end of
the month). Korean 다음 주 금요일 and Thai วันศุกร์สัปดาห์หน้า ("Friday of next week") name the
weekday of next calendar week, as Chinese 下周五 does; 다음 금요일 and วันศุกร์หน้า ("next
Friday") the coming one.

Rules (the prompt's): "today" is today; "tomorrow" the next day; a weekday name, with or
without "next"/"this"/"on"/"by", the first such weekday after today; "in N days/weeks" counts
from today; "next week" is the Friday of next week; "end of the week" the coming Friday;
"next month" the 15th of next month; "end of the month" its last day. Chinese 下周五 and
Japanese 来週の金曜日 name the weekday of next calendar week, which is what they mean.

A pure-regex resolver was chosen over ``dateparser``: that library resolves "next Friday" by
its own rule rather than the prompt's, finds phrases inside words in CJK text, and costs
milliseconds of CPU and a large import per call, against microseconds here. For Korean, Arabic
and Thai, dateparser 1.5.0's ``search_dates`` (future dates preferred) found one of nine test
phrases right (Arabic "الجمعة القادمة"): none of "2주 후", "금요일에", "بعد أسبوعين",
"ภายในสองสัปดาห์", "วันศุกร์หน้า", "สิ้นเดือน", and "다음 주 금요일" became Monday."""

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
    # Russian genitive ("до пятницы", by Friday); Italian without the accent.
    **{n: i for i, n in enumerate(("понедельника", "вторника", "среды", "четверга", "пятницы", "субботы", "воскресенья"))},
    **{n: i for i, n in enumerate(("lunedi", "martedi", "mercoledi", "giovedi", "venerdi"))},
}  # fmt: skip
# Thai, Korean and Arabic: weekday stems, the "N" of "in N days/weeks", the units.
# fmt: off
_TH_WEEKDAY = {"จันทร์": 0, "อังคาร": 1, "พุธ": 2, "พฤหัสบดี": 3, "พฤหัส": 3, "ศุกร์": 4, "เสาร์": 5, "อาทิตย์": 6}
_KO_WEEKDAY = {"월": 0, "화": 1, "수": 2, "목": 3, "금": 4, "토": 5, "일": 6}
_AR_WEEKDAY = {"الاثنين": 0, "الإثنين": 0, "الثلاثاء": 1, "الأربعاء": 2, "الاربعاء": 2, "الخميس": 3, "الجمعة": 4, "الجمعه": 4, "السبت": 5, "الأحد": 6, "الاحد": 6}
_TH_NUMBERS = {"หนึ่ง": 1, "สอง": 2, "สาม": 3, "สี่": 4, "ห้า": 5, "หก": 6, "เจ็ด": 7, "แปด": 8, "เก้า": 9, "สิบ": 10}
_KO_NUMBERS = {"일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "한": 1, "두": 2, "세": 3, "네": 4}
_AR_NUMBERS = {"واحد": 1, "اثنين": 2, "اثنان": 2, "ثلاثة": 3, "ثلاث": 3, "أربعة": 4, "اربعة": 4, "أربع": 4, "خمسة": 5, "خمس": 5, "ستة": 6, "سبعة": 7, "عشرة": 10}
# Arabic duals carry their number ("أسبوعين", two weeks); a bare singular is one.
_AR_UNIT_COUNT = {"أسبوعين": 2, "اسبوعين": 2, "يومين": 2, "أسبوع": 1, "اسبوع": 1, "يوم": 1}
# fmt: on
_AR_LETTER = r"\u0621-\u064a"
_HANGUL = r"\uac00-\ud7a3"
_NOT_AR = rf"(?<![{_AR_LETTER}])"
_AR_END = rf"(?![{_AR_LETTER}])"
_AR_NEXT = r"(?:القادم|القادمة|المقبل|المقبلة|الجاي|الجاية)"
_CJK_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_JA_WEEKDAY = {"月": 0, "火": 1, "水": 2, "木": 3, "金": 4, "土": 5, "日": 6}

_COUNT = r"\d+|" + "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True))
_WEEKDAY = "|".join(sorted(_WEEKDAY_NAMES, key=len, reverse=True))
_MONTH = "|".join(m[:3] + f"(?:{m[3:]})?" if len(m) > 3 else m for m in MONTHS)
_WEEK_UNIT = r"weeks?|semanas?|semaines?|wochen?|settimane?|settimana|недел[юиь]"
_DAY_UNIT = r"days?|días?|dias?|jours?|tag(?:en)?|giorn[oi]|д(?:ень|ня|ней)"

# Words around a date phrase that belong to it: prepositions and modifiers before it ("by
# next Friday", "bis nächsten Freitag", Thai ภายใน "within"), modifiers and particles after it
# ("vendredi prochain", "at the latest", Korean 까지 "until"), so the simulator drops the
# whole phrase from a title instead of leaving "by", "prochain" or "까지" behind.
_LEAD_WORDS = (
    "no later than|not later than|this coming|by|on|before|until|till|due|for|at|this|next|the"
    "|para el|para la|antes del|antes de|hasta el|hasta|el|la|este|esta|próximo|próxima|al"
    "|d'ici à|d'ici|jusqu'au|jusqu'à|avant|pour|le|ce|cette|au plus tard"
    "|spätestens|bis zum|bis|am|zum|vor|nächsten|nächste|kommenden|kommende|diesen|an"
    "|entro il|entro|per il|per|il|prossimo|prossima|questo|questa"
    "|не позднее|до|в|к|на|следующую|следующий|следующее|ближайшую|ближайший|эту|этот"
    "|قبل|بحلول|حتى|في|موعد أقصاه"
)
_LEAD = re.compile(
    rf"(?:(?:(?<![\w'])(?:{_LEAD_WORDS})\s+)+|(?:ภายใน|ก่อน|จนถึง|ถึง)\s*)$", re.IGNORECASE
)
_TAIL = re.compile(
    r"(?:\s+(?:prochain|prochaine|próximo|próxima|prossimo|prossima|que viene|qui vient"
    r"|at the latest|au plus tard|spätestens|a más tardar|al más tardar|al più tardi"
    r"|самое позднее|على الأكثر|القادم|القادمة|المقبل|المقبلة)(?![\w-]))+"
    r"|(?:전까지|전에|까지|에는|에|안에|내로|중으로|이내에)",
    re.IGNORECASE,
)

Resolver = Callable[[re.Match[str], date], date | None]


def _plus(days: int) -> Resolver:
    return lambda _m, today: today + timedelta(days=days)


_WEEK_UNITS = re.compile(
    _WEEK_UNIT + r"|周|週|星期|个星期|個星期|주|สัปดาห์|อาทิตย์|أسبوع|اسبوع|أسابيع|اسابيع"
)
_ALL_NUMBERS = {**_NUMBERS, **_TH_NUMBERS, **_KO_NUMBERS, **_AR_NUMBERS}


def _count(m: re.Match[str], today: date) -> date | None:
    raw = (m.group("n") or "").lower()
    unit = (m.group("unit") or "").lower()
    if raw:
        count = int(raw) if raw.isdigit() else _ALL_NUMBERS.get(raw)
    else:
        count = _AR_UNIT_COUNT.get(unit)
    if count is None or count > 3660:
        return None
    per = 7 if _WEEK_UNITS.match(unit) else 1
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


def _table_weekday(table: dict[str, int]) -> Resolver:
    """A weekday from ``table`` (group ``d``): of next calendar week when group ``next`` (a
    "next week" word) matched, else the coming one."""

    def resolve_one(m: re.Match[str], today: date) -> date | None:
        target = table[m.group("d")]
        return _next_calendar_week(target, today) if m.group("next") else _coming(target, today)

    return resolve_one


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


#: A rule's prefilter for ASCII sentences: the rule runs only when the lower-cased sentence
#: contains one of these words, each a part every ASCII match of its pattern must contain
#: (``""`` would always pass); None for a pattern that needs a non-ASCII letter and so cannot
#: match ASCII text. Non-ASCII sentences run every rule. Most sentences are ASCII and name one
#: date or none, and running all patterns over each was most of the worker's date CPU (issue 12).
Gate = tuple[str, ...] | None
_UNIT_WORDS = (
    "week",
    "semana",
    "semaine",
    "woche",
    "settiman",
    "day",
    "dia",
    "jour",
    "tag",
    "giorn",
)
_MONTH_PREFIXES = tuple(month[:3] for month in MONTHS)
_ASCII_WEEKDAYS = tuple(name for name in _WEEKDAY_NAMES if name.isascii())

# Order matters: longer phrases first, so "day after tomorrow" is not read as "tomorrow".
_RULES: list[tuple[str, str, Resolver, Gate]] = [
    # after tomorrow
    (
        "after_tomorrow",
        _b(
            r"(?:the\s+)?day after tomorrow|pasado\s+mañana|après-demain"
            r"|übermorgen|dopodomani|послезавтра"
        ),
        _plus(2),
        ("tomorrow", "dopodomani"),
    ),
    (
        "after_tomorrow",
        r"后天|後天|明後日|あさって|มะรืนนี้|(?<!\w)모레|(?<!\w)بعد غد",
        _plus(2),
        None,
    ),
    # today
    (
        "today",
        _b(
            r"today|tonight|this (?:morning|afternoon|evening)|hoy|aujourd'hui|ce soir"
            r"|heute|oggi|stasera|сегодня"
        ),
        _plus(0),
        ("today", "tonight", "this ", "hoy", "aujourd'hui", "ce soir", "heute", "oggi", "stasera"),
    ),
    ("today", r"今天|今晚|今日|今夜|วันนี้|(?<!\w)오늘|(?<!\w)اليوم(?!\w)", _plus(0), None),
    # tomorrow ("mañana" after "la"/"por la" is "the morning", not tomorrow)
    (
        "tomorrow",
        _b(
            r"tomorrow(?: (?:morning|afternoon|evening|night))?|(?<!la )mañana"
            r"|demain|morgen|domani|завтра"
        ),
        _plus(1),
        ("tomorrow", "demain", "morgen", "domani"),
    ),
    # Korean particles attach to the word ("내일까지"); Arabic "غداً" is not "غداء" (lunch).
    (
        "tomorrow",
        r"明天|明日|あした|あす|พรุ่งนี้|(?<!\w)내일|(?<!\w)غد(?:اً|ًا|ا)?(?![\u0621-\u064a])",
        _plus(1),
        None,
    ),
    # in N days / weeks
    (
        "in_n",
        _b(
            rf"(?:in|en|dentro de|dans|tra|fra|через) (?P<n>{_COUNT}) "
            rf"(?P<unit>{_WEEK_UNIT}|{_DAY_UNIT})"
        ),
        _count,
        _UNIT_WORDS,
    ),
    (
        "in_n",
        r"(?P<n>\d+|[一两二三四五])\s*(?P<unit>个星期|個星期|周|週間|星期|天|日)(?:后|後|以内|内)",
        _count,
        None,
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
        ("month", "mes", "mois", "monat"),
    ),
    (
        "end_month",
        r"本?月底|月末|今月末|สิ้นเดือน(?:นี้)?|ปลายเดือน(?:นี้)?|월말|이번\s?달\s?말|이달\s?말"
        r"|(?:نهاية|آخر|اخر)\s+(?:هذا\s+)?الشهر",
        _end_of_month,
        None,
    ),
    (
        "end_week",
        _b(
            r"(?:the )?end of (?:the |this )?week|fin de (?:la )?semaine"
            r"|ende der woche|fine settimana|конц[ае] недели"
        ),
        _end_of_week,
        ("week", "semaine", "woche", "settimana"),
    ),
    ("end_week", r"周末|週末", _end_of_week, None),
    # in N days / weeks: Thai, Korean, Arabic
    (
        "in_n",
        r"(?:ภายใน|ในอีก|อีก|ใน)\s*(?P<n>\d+|" + "|".join(_TH_NUMBERS) + r")\s*"
        r"(?P<unit>สัปดาห์|อาทิตย์|วัน)(?:ข้างหน้า)?",
        _count,
        None,
    ),
    (
        "in_n",
        rf"(?<![{_HANGUL}])(?P<n>\d+|[일이삼사오]|한|두|세|네)\s*(?P<unit>주일?|일)\s*"
        r"(?:후|뒤|안에|내에|이내)",
        _count,
        None,
    ),
    (
        "in_n",
        rf"{_NOT_AR}(?:بعد|خلال|في غضون|في خلال)\s+(?:(?P<n>\d+|"
        + "|".join(_AR_NUMBERS)
        + rf")\s+)?(?P<unit>أسبوعين|اسبوعين|أسابيع|اسابيع|أسبوع|اسبوع|يومين|أيام|ايام|يوم){_AR_END}",
        _count,
        None,
    ),
    # weekday of next calendar week (CJK), before "next week"
    ("weekday", r"(?P<next>下(?:个)?(?:周|星期|礼拜))(?P<d>[一二三四五六日天])", _zh_weekday, None),
    ("weekday", r"(?P<next>)(?:周|星期|礼拜)(?P<d>[一二三四五六日天])", _zh_weekday, None),
    ("weekday", r"(?P<next>来週の?)(?P<d>[月火水木金土日])曜(?:日)?", _ja_weekday, None),
    ("weekday", r"(?P<next>)(?P<d>[月火水木金土日])曜日", _ja_weekday, None),
    # Korean: 다음 주 금요일 (Friday of next week), 다음 금요일 / 이번 주 금요일 / 금요일
    (
        "weekday",
        rf"(?<![{_HANGUL}])(?:(?P<next>다음\s?주|담주|차주)\s*|이번\s?주\s*|다음\s*)?"
        r"(?P<d>[월화수목금토일])요일",
        _table_weekday(_KO_WEEKDAY),
        None,
    ),
    # Thai: วันศุกร์สัปดาห์หน้า (Friday of next week), วันศุกร์หน้า / วันศุกร์นี้ / วันศุกร์
    (
        "weekday",
        r"วัน(?P<d>" + "|".join(_TH_WEEKDAY) + r")"
        r"(?:\s*(?P<next>(?:สัปดาห์|อาทิตย์)หน้า)|\s*หน้า|\s*นี้)?",
        _table_weekday(_TH_WEEKDAY),
        None,
    ),
    # Arabic: (يوم) الجمعة (القادمة)
    (
        "weekday",
        rf"{_NOT_AR}(?:يوم\s+)?(?P<d>" + "|".join(_AR_WEEKDAY) + rf"){_AR_END}"
        rf"(?:\s+{_AR_NEXT}{_AR_END})?(?P<next>(?!))?",
        _table_weekday(_AR_WEEKDAY),
        None,
    ),
    # next week / next month
    (
        "next_week",
        _b(
            r"next week|(?:la )?(?:próxima semana|semana que viene)|la semaine prochaine"
            r"|nächste woche|la settimana prossima|la prossima settimana|на следующей неделе"
            r"|следующей неделе"
        ),
        _next_week,
        ("week", "semana", "semaine", "settimana"),
    ),
    (
        "next_week",
        rf"下周|下星期|下个星期|来週|สัปดาห์หน้า|อาทิตย์หน้า|(?<![{_HANGUL}])(?:다음\s?주|담주|차주)"
        rf"|{_NOT_AR}(?:الأسبوع|الاسبوع)\s+{_AR_NEXT}{_AR_END}",
        _next_week,
        None,
    ),
    (
        "next_month",
        _b(
            r"next month|(?:el )?próximo mes|(?:el )?mes que viene|le mois prochain"
            r"|nächsten monat|il mese prossimo|il prossimo mese|в следующем месяце"
        ),
        _next_month,
        ("month", "mes", "mois"),
    ),
    (
        "next_month",
        rf"下个月|下個月|来月|เดือนหน้า|(?<![{_HANGUL}])다음\s?달"
        rf"|{_NOT_AR}الشهر\s+{_AR_NEXT}{_AR_END}",
        _next_month,
        None,
    ),
    # explicit dates
    ("iso", r"(?<!\d)(?P<iso>\d{4}-\d{2}-\d{2})(?!\d)", _iso, ("-",)),
    (
        "month_day",
        _b(rf"(?P<month>{_MONTH})\.? (?P<day>\d{{1,2}})(?:st|nd|rd|th)?"),
        _month_day,
        _MONTH_PREFIXES,
    ),
    # weekday names of spaced scripts
    ("weekday", _b(rf"(?P<weekday>{_WEEKDAY})"), _weekday, _ASCII_WEEKDAYS),
]
_PATTERNS = [(name, re.compile(body, re.IGNORECASE), fn, gate) for name, body, fn, gate in _RULES]
#: The rules an ASCII sentence may match, each with its gate words.
_ASCII_PATTERNS = [(rule, rule[3]) for rule in _PATTERNS if rule[3] is not None]

VAGUE_TIME = re.compile(
    r"\b(?:soon|eventually|sometime|someday|some day|later|one day|at some point|"
    r"whenever|in the future|asap|pronto|bientôt|bald|presto|скоро)\b|不久|以后|そのうち|いつか",
    re.IGNORECASE,
)
#: VAGUE_TIME's prefilter for ASCII sentences (see :data:`Gate`).
_VAGUE_GATE = (
    "soon", "eventually", "some", "later", "one day", "whenever", "future", "asap", "pronto",
    "bald", "presto",
)  # fmt: skip


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
    Never raises for any text. Equal to :func:`resolve_exhaustive`; an ASCII sentence skips
    the patterns whose gate words it lacks (see :data:`Gate`)."""
    if not sentence.isascii():
        return resolve_exhaustive(sentence, today)
    # ASCII only: lower() is exactly the case folding IGNORECASE applies to it.
    lowered = sentence.lower()
    has = lowered.__contains__  # map() over a C method: a third of a generator's cost
    rules = [rule for rule, words in _ASCII_PATTERNS if any(map(has, words))]
    vague = any(map(has, _VAGUE_GATE))
    return _resolve(sentence, today, rules, vague=vague)


def resolve_exhaustive(sentence: str, today: date) -> DueDate:
    """:func:`resolve` with every pattern run over ``sentence``, no prefilter: the reference
    its fast path is tested against."""
    return _resolve(sentence, today, _PATTERNS, vague=True)


def _resolve(
    sentence: str,
    today: date,
    rules: list[tuple[str, re.Pattern[str], Resolver, Gate]],
    *,
    vague: bool,
) -> DueDate:
    """:func:`resolve` with only ``rules`` (in :data:`_RULES` order) and, when ``vague``,
    :data:`VAGUE_TIME`."""
    spans: list[tuple[int, int]] = []
    found: list[tuple[int, date]] = []
    for _name, pattern, resolver, _gate in rules:
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
            tail = _TAIL.match(sentence, match.end())
            spans.append(
                (lead.start() if lead else match.start(), tail.end() if tail else match.end())
            )
            found.append((match.start(), day))
    if vague:
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
