"""Evaluation cases of parse-task, with the clock frozen at Monday 2024-01-15T12:00:00Z: the
domain's cases (shared/DOMAIN.md) and a multilingual set. Each case lists only what a correct
answer must satisfy, so the same cases judge the simulator and any real model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from taskmesh.jobs.v1 import jobs_pb2

FROZEN_NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)

Output = jobs_pb2.ParseTaskOutput
Check = tuple[str, Callable[[Output], bool]]


def due_on(day: date) -> Check:
    return (f"due {day.isoformat()}", lambda o: _due(o) == day)


def due_between(first: date, last: date) -> Check:
    return (f"due {first.isoformat()}..{last.isoformat()}", lambda o: _in(_due(o), first, last))


def no_due_date() -> Check:
    return ("no due date", lambda o: not o.HasField("due_time"))


def category(name: str) -> Check:
    return (f"category {name}", lambda o: o.category == name)


def level_in(*names: str) -> Check:
    return (f"level {'/'.join(names)}", lambda o: o.priority.level in names)


def score_between(low: int, high: int) -> Check:
    return (f"score {low}-{high}", lambda o: low <= o.priority.score <= high)


def subtasks_between(low: int, high: int) -> Check:
    return (f"{low}-{high} subtasks", lambda o: low <= len(o.subtasks) <= high)


def atomic() -> Check:
    return ("atomic", lambda o: len(o.subtasks) == 0)


def subtasks_mention(*words: str) -> Check:
    def check(o: Output) -> bool:
        text = " ".join(o.subtasks).casefold()
        return all(word in text for word in words)

    return (f"subtasks mention {'/'.join(words)}", check)


def title_keeps(*words: str) -> Check:
    return (
        f"title keeps {'/'.join(words)}",
        lambda o: all(w.casefold() in o.title.casefold() for w in words),
    )


def _due(o: Output) -> date | None:
    return o.due_time.ToDatetime(tzinfo=UTC).date() if o.HasField("due_time") else None


def _in(day: date | None, first: date, last: date) -> bool:
    return day is not None and first <= day <= last


@dataclass(frozen=True)
class EvalCase:
    id: str
    text: str
    checks: list[Check] = field(default_factory=list)
    vague: bool = False
    language: str = "en"


CASES: list[EvalCase] = [
    EvalCase(
        "bill-tomorrow",
        "Pay electricity bill tomorrow",
        [title_keeps("Pay", "Bill"), due_on(date(2024, 1, 16)), category("finance")],
    ),
    EvalCase(
        "report-next-friday",
        "Submit Q2 report by next Friday",
        [
            title_keeps("Submit", "Report"),
            due_on(date(2024, 1, 19)),
            category("work"),
            subtasks_between(3, 7),
            subtasks_mention("review", "submit"),
        ],
    ),
    EvalCase(
        "dentist",
        "Book dentist appointment",
        [category("health"), level_in("medium", "high"), score_between(4, 8), no_due_date()],
    ),
    EvalCase(
        "product-launch",
        "Coordinate a product launch with marketing, engineering, and sales teams by end of month",
        [
            category("work"),
            level_in("high", "critical"),
            score_between(7, 10),
            due_on(date(2024, 1, 31)),
            subtasks_between(3, 7),
        ],
    ),
    EvalCase(
        "team-event",
        "Plan and execute a company-wide team building event for 50 people next month with "
        "budget approval, venue booking, and activity coordination",
        [
            category("work"),
            due_between(date(2024, 2, 10), date(2024, 2, 20)),
            subtasks_between(5, 7),
        ],
    ),
    EvalCase("groceries", "Buy groceries", [category("errand"), atomic(), no_due_date()]),
    EvalCase("laptop-screen", "Fix broken laptop screen", [atomic()]),
    EvalCase("vacation", "Plan vacation", [subtasks_between(3, 7)]),
    EvalCase("party", "Organize party", [subtasks_between(3, 7)]),
    EvalCase("vague-plan-something", "Plan something soon", vague=True),
    EvalCase("vague-do-stuff", "Do stuff", vague=True),
    EvalCase("vague-fix-it", "Fix it", vague=True),
]


def title_chars(low: int, high: int) -> Check:
    return (f"title {low}-{high} chars", lambda o: low <= len(o.title.replace(" ", "")) <= high)


TOMORROW = date(2024, 1, 16)
NEXT_FRIDAY = date(2024, 1, 19)
TWO_WEEKS = date(2024, 1, 29)
MONTH_END = date(2024, 1, 31)

#: Sentences in other languages and scripts (issues 11.9, 14.6): the due date must be the one
#: the sentence names, the title fit its script's rule.
MULTILINGUAL: list[EvalCase] = [
    EvalCase("es-bill", "Pagar la factura de la luz mañana", [due_on(TOMORROW), category("finance")], language="es"),
    EvalCase("es-report", "Entregar el informe trimestral el próximo viernes", [due_on(NEXT_FRIDAY), category("work")], language="es"),
    EvalCase("fr-passport", "Renouveler le passeport dans deux semaines", [due_on(TWO_WEEKS)], language="fr"),
    EvalCase("fr-rent", "Payer le loyer à la fin du mois", [due_on(MONTH_END), category("finance")], language="fr"),
    EvalCase("de-bill", "Stromrechnung morgen bezahlen", [due_on(TOMORROW), category("finance")], language="de"),
    EvalCase("de-report", "Quartalsbericht bis nächsten Freitag abgeben", [due_on(NEXT_FRIDAY), category("work")], language="de"),
    EvalCase("zh-report", "下周五之前准备季度销售报告", [due_on(date(2024, 1, 26)), category("work"), title_chars(2, 30)], language="zh"),
    EvalCase("zh-bill", "明天交电费", [due_on(TOMORROW), title_chars(2, 30)], language="zh"),
    EvalCase("ja-bill", "明日までに電気代を払う", [due_on(TOMORROW), title_chars(2, 30)], language="ja"),
    EvalCase("ja-rent", "月末までに家賃を払う", [due_on(MONTH_END), title_chars(2, 30)], language="ja"),
    EvalCase("th-bill", "พรุ่งนี้จ่ายค่าไฟฟ้า", [due_on(TOMORROW), title_chars(2, 30)], language="th"),
    EvalCase("ko-bill", "내일 전기 요금 납부하기", [due_on(TOMORROW)], language="ko"),
    EvalCase("ar-bill", "ادفع فاتورة الكهرباء غدا", [due_on(TOMORROW)], language="ar"),
    EvalCase("ru-passport", "Продлить паспорт через две недели", [due_on(TWO_WEEKS)], language="ru"),
]  # fmt: skip

ALL_CASES: list[EvalCase] = [*CASES, *MULTILINGUAL]
