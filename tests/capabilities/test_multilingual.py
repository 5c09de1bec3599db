"""Sentences in many scripts, and due dates that are right, not only valid (issues 11.9, 14.6)."""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from taskmesh.capabilities.errors import InvalidOutputError
from taskmesh.capabilities.parse_task import config as cfg
from taskmesh.capabilities.parse_task import run_parse_task
from taskmesh.capabilities.parse_task.dates import check_due_day, resolve
from taskmesh.capabilities.parse_task.schema import OutputInvalid, parse_core, parse_subtasks
from taskmesh.jobs.v1 import jobs_pb2

MakeInput = Callable[..., jobs_pb2.ParseTaskInput]
MONDAY = date(2024, 1, 15)  # the conftest's frozen clock: Monday 2024-01-15 12:00 UTC
TOMORROW, NEXT_FRIDAY, TWO_WEEKS = (
    MONDAY + timedelta(days=1),
    MONDAY + timedelta(days=4),
    MONDAY + timedelta(days=14),
)
MONTH_END = date(MONDAY.year, MONDAY.month, calendar.monthrange(MONDAY.year, MONDAY.month)[1])

KINDS = ("tomorrow", "next Friday", "in two weeks", "end of the month")
# The four relative kinds in every supported language: (tomorrow, next Friday, in two weeks,
# end of the month). Chinese 下周五, Japanese 来週の金曜日, Korean 다음 주 금요일 and Thai
# วันศุกร์สัปดาห์หน้า say "Friday of next week": the Friday of next calendar week.
MATRIX: dict[str, tuple[tuple[str, date], ...]] = {
    "en": (
        ("Pay the electricity bill tomorrow", TOMORROW),
        ("Submit the report by next Friday", NEXT_FRIDAY),
        ("Renew my passport in two weeks", TWO_WEEKS),
        ("Pay the rent at the end of the month", MONTH_END),
    ),
    "es": (
        ("Pagar la factura de la luz mañana", TOMORROW),
        ("Entregar el informe el próximo viernes", NEXT_FRIDAY),
        ("Renovar el pasaporte en dos semanas", TWO_WEEKS),
        ("Pagar el alquiler a fin de mes", MONTH_END),
    ),
    "fr": (
        ("Payer la facture d'électricité demain", TOMORROW),
        ("Rendre le rapport vendredi prochain", NEXT_FRIDAY),
        ("Renouveler le passeport dans deux semaines", TWO_WEEKS),
        ("Payer le loyer à la fin du mois", MONTH_END),
    ),
    "de": (
        ("Stromrechnung morgen bezahlen", TOMORROW),
        ("Bericht bis nächsten Freitag abgeben", NEXT_FRIDAY),
        ("Reisepass in zwei Wochen erneuern", TWO_WEEKS),
        ("Miete bis Ende des Monats zahlen", MONTH_END),
    ),
    "it": (
        ("Pagare la bolletta della luce domani", TOMORROW),
        ("Consegnare il rapporto entro venerdì prossimo", NEXT_FRIDAY),
        ("Rinnovare il passaporto tra due settimane", TWO_WEEKS),
        ("Pagare l'affitto entro fine mese", MONTH_END),
    ),
    "ru": (
        ("Оплатить счёт за электричество завтра", TOMORROW),
        ("Сдать отчёт в следующую пятницу", NEXT_FRIDAY),
        ("Продлить паспорт через две недели", TWO_WEEKS),
        ("Заплатить аренду до конца месяца", MONTH_END),
    ),
    "zh": (
        ("明天交电费", TOMORROW),
        ("下周五之前准备季度销售报告", NEXT_FRIDAY + timedelta(days=7)),
        ("两周后续签护照", TWO_WEEKS),
        ("月底前交房租", MONTH_END),
    ),
    "ja": (
        ("明日電気代を払う", TOMORROW),
        ("来週の金曜日までに報告書を提出する", NEXT_FRIDAY + timedelta(days=7)),
        ("2週間後にパスポートを更新する", TWO_WEEKS),
        ("月末までに家賃を払う", MONTH_END),
    ),
    "ko": (
        ("내일 전기 요금 납부하기", TOMORROW),
        ("다음 주 금요일까지 보고서 제출", NEXT_FRIDAY + timedelta(days=7)),
        ("2주 후에 여권 갱신하기", TWO_WEEKS),
        ("월말까지 월세 내기", MONTH_END),
    ),
    "ar": (
        ("ادفع فاتورة الكهرباء غدا", TOMORROW),
        ("سلم التقرير يوم الجمعة القادمة", NEXT_FRIDAY),
        ("جدد جواز السفر بعد أسبوعين", TWO_WEEKS),
        ("ادفع الإيجار في نهاية الشهر", MONTH_END),
    ),
    "th": (
        ("พรุ่งนี้จ่ายค่าไฟฟ้า", TOMORROW),
        ("ส่งรายงานภายในวันศุกร์หน้า", NEXT_FRIDAY),
        ("ต่ออายุหนังสือเดินทางภายในสองสัปดาห์", TWO_WEEKS),
        ("จ่ายค่าเช่าสิ้นเดือน", MONTH_END),
    ),
}
DATED = [row for rows in MATRIX.values() for row in rows]
# More ways to say the same kinds, in the languages with the most phrasings.
VARIANTS = [
    ("다음 금요일까지 보고서 제출", NEXT_FRIDAY),
    ("금요일에 보고서 제출", NEXT_FRIDAY),
    ("일주일 후 회의", MONDAY + timedelta(days=7)),
    ("이번 달 말까지 월세 내기", MONTH_END),
    ("سلم التقرير قبل الجمعة", NEXT_FRIDAY),
    ("جدد جواز السفر خلال ٣ أيام", MONDAY + timedelta(days=3)),
    ("ادفع الإيجار آخر الشهر", MONTH_END),
    ("ส่งรายงานวันศุกร์สัปดาห์หน้า", NEXT_FRIDAY + timedelta(days=7)),
    ("ต่ออายุพาสปอร์ตในอีก 2 สัปดาห์", TWO_WEEKS),
    ("ไปวัดวันอาทิตย์", MONDAY + timedelta(days=6)),
    ("Сдать отчёт до пятницы", NEXT_FRIDAY),
    ("Consegnare il rapporto entro venerdi", NEXT_FRIDAY),
]


def test_every_language_has_every_kind() -> None:
    # One relative kind in a language means all four (issue 14: no half-supported language).
    for language, rows in MATRIX.items():
        assert len(rows) == len(KINDS), language
        assert all(resolve(text, MONDAY).candidates for text, _ in rows), language


@pytest.mark.parametrize(("sentence", "day"), VARIANTS)
def test_more_phrasings_resolve(sentence: str, day: date) -> None:
    assert resolve(sentence, MONDAY).candidates == (day,)


@pytest.mark.parametrize(("sentence", "day"), DATED)
def test_relative_dates_resolve_by_the_prompts_rules(sentence: str, day: date) -> None:
    named = resolve(sentence, MONDAY)
    assert named.candidates == (day,)


@pytest.mark.parametrize(
    "sentence", ["Buy milk soon", "Llamar por la mañana", "تناول الغداء مع أحمد", "Plan a trip"]
)
def test_sentences_without_a_date_name_none(sentence: str) -> None:
    assert resolve(sentence, MONDAY).candidates == ()


# --- the handler corrects the model's date ---------------------------------------------------


def _completion(content: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        }
    )


class _Model:
    """Answers core calls with the given due dates in turn, keeping every core request."""

    def __init__(self, *dues: str | None, title: str = "Pay Electricity Bill") -> None:
        self.dues = list(dues)
        self.title = title
        self.core_requests: list[dict[str, Any]] = []
        self.chat = self.completions = self

    async def create(self, **kwargs: Any) -> ChatCompletion:
        if kwargs["response_format"]["json_schema"]["name"] != "parse_task_core":
            return _completion('{"subtasks": null}')
        self.core_requests.append(kwargs)
        task = {
            "title": self.title,
            "dueDate": self.dues.pop(0),
            "category": "finance",
            "priority": {"level": "high", "score": 7, "reason": "Late fees."},
        }
        return _completion(json.dumps({"result": "task", "task": task, "error": None}))


def _due(result: Any) -> date | None:
    out = result.output
    return out.due_time.ToDatetime(tzinfo=UTC).date() if out.HasField("due_time") else None


@pytest.mark.parametrize(("sentence", "day"), DATED)
async def test_wrong_due_date_is_corrected_when_the_sentence_names_one_day(
    make_input: MakeInput, sentence: str, day: date
) -> None:
    # Issue 14.6: the model put every dated sentence "today at the current time".
    model = _Model("2024-01-15T12:00:00Z")
    result = await run_parse_task(model, "m", make_input(sentence))  # type: ignore[arg-type]
    assert _due(result) == day
    assert result.output.due_time.ToDatetime(tzinfo=UTC).time().hour == 0
    assert len(model.core_requests) == 1


async def test_missing_due_date_is_filled_and_right_one_kept(make_input: MakeInput) -> None:
    result = await run_parse_task(
        _Model(None),
        "m",
        make_input("Pay the electricity bill tomorrow"),  # type: ignore[arg-type]
    )
    assert _due(result) == TOMORROW
    # A time of day the model read from the sentence is kept when the day is right.
    result = await run_parse_task(
        _Model("2024-01-16T15:00:00Z"),
        "m",
        make_input("Pay the electricity bill tomorrow at 3pm"),  # type: ignore[arg-type]
    )
    assert result.output.due_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 16, 15, tzinfo=UTC)


async def test_date_is_left_alone_when_the_sentence_names_none(make_input: MakeInput) -> None:
    result = await run_parse_task(
        _Model("2024-03-01T00:00:00Z"),
        "m",
        make_input("Pay the electricity bill"),  # type: ignore[arg-type]
    )
    assert _due(result) == date(2024, 3, 1)


async def test_ambiguous_sentence_fails_the_attempt_and_the_retry_sees_why(
    make_input: MakeInput,
) -> None:
    model = _Model("2024-01-25T00:00:00Z", "2024-01-19T00:00:00Z")
    result = await run_parse_task(
        model,
        "m",
        make_input("Call the bank tomorrow or on Friday"),  # type: ignore[arg-type]
    )
    assert _due(result) == NEXT_FRIDAY
    feedback = model.core_requests[1]["messages"][-1]["content"]
    assert "2024-01-16 or 2024-01-19" in feedback and "got 2024-01-25" in feedback


async def test_ambiguous_sentence_with_a_wrong_date_twice_is_invalid_output(
    make_input: MakeInput,
) -> None:
    model = _Model("2024-01-25T00:00:00Z", "2024-01-26T00:00:00Z")
    with pytest.raises(InvalidOutputError) as info:
        await run_parse_task(model, "m", make_input("Call the bank tomorrow or on Friday"))  # type: ignore[arg-type]
    assert info.value.errors == [
        "dueDate must be one of the days the sentence names (2024-01-16 or 2024-01-19); "
        "got 2024-01-26"
    ]


def test_due_check_rules() -> None:
    assert check_due_day(None, "Buy milk", MONDAY).day is None
    assert check_due_day(TOMORROW, "Buy milk tomorrow", MONDAY).corrected is False
    fixed = check_due_day(MONDAY, "Buy milk tomorrow", MONDAY)
    assert (fixed.day, fixed.corrected) == (TOMORROW, True)


# --- titles and steps in scripts with and without spaces -------------------------------------

CONFIG = cfg.default_config()


def _task(title: str) -> str:
    task = {
        "title": title,
        "dueDate": None,
        "category": "work",
        "priority": {"level": "medium", "score": 5, "reason": "需要按时完成。"},
    }
    return json.dumps({"result": "task", "task": task, "error": None}, ensure_ascii=False)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("准备季度销售报告", "准备季度销售报告"),  # Chinese: one "word", 8 characters
        ("四半期報告書を提出する", "四半期報告書を提出する"),  # Japanese
        ("จ่ายค่าไฟฟ้า", "จ่ายค่าไฟฟ้า"),  # Thai
        ("전기 요금 납부하기", "전기 요금 납부하기"),  # Korean: spaced, counted in words
        ("ادفع فاتورة الكهرباء", "ادفع فاتورة الكهرباء"),  # Arabic
        ("оплатить счёт за электричество", "Оплатить счёт за электричество"),  # Russian
        ("准备 Q2 销售报告", "准备 Q2 销售报告"),  # mixed, mostly Han
    ],
)
def test_titles_in_many_scripts_are_accepted(title: str, expected: str) -> None:
    out = parse_core(_task(title), CONFIG)
    assert isinstance(out, jobs_pb2.ParseTaskOutput)
    # No English title case forced on other scripts; first letter raised where there is case.
    assert out.title == expected


@pytest.mark.parametrize(
    ("title", "rule"),
    [
        ("报", "title must have 2-30 characters in this script (got 1"),
        ("准备季度销售报告" * 4, "title must have 2-30 characters in this script (got 32"),
        ("จ", "title must have 2-30 characters in this script"),
        ("납부하기", "title must have 2-8 words (got 1"),
        ("Оплатить", "title must have 2-8 words (got 1"),
    ],
)
def test_title_length_rules_per_script(title: str, rule: str) -> None:
    with pytest.raises(OutputInvalid) as info:
        parse_core(_task(title), CONFIG)
    assert any(rule in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    "steps",
    [
        ["收集销售数据", "撰写报告初稿", "提交季度报告"],
        ["データを集める", "報告書を書く", "報告書を提出する"],
        ["รวบรวมข้อมูล", "เขียนรายงาน", "ส่งรายงาน"],
        ["데이터 수집하기", "보고서 작성하기", "보고서 제출하기"],
        ["Собрать данные продаж", "Написать черновик отчёта", "Отправить отчёт"],
    ],
)
def test_subtasks_in_many_scripts_are_accepted(steps: list[str]) -> None:
    assert parse_subtasks(json.dumps({"subtasks": steps}, ensure_ascii=False)) == steps


# --- the simulator answers them validly, end to end ----------------------------------------


@pytest.mark.parametrize(
    ("sentence", "title", "day"),
    [
        ("下周五之前准备季度销售报告", "准备季度销售报告", date(2024, 1, 26)),
        ("明日までに電気代を払う", "電気代を払う", TOMORROW),
        ("พรุ่งนี้จ่ายค่าไฟฟ้า", "จ่ายค่าไฟฟ้า", TOMORROW),
        ("내일 전기 요금 납부하기", "전기 요금 납부하기", TOMORROW),
        ("ادفع فاتورة الكهرباء غدا", "ادفع فاتورة الكهرباء", TOMORROW),
        ("Оплатить счёт за электричество завтра", "Оплатить счёт за электричество", TOMORROW),
    ],
)
async def test_simulator_gives_valid_tasks_in_many_scripts(
    sim: Any, make_input: MakeInput, sentence: str, title: str, day: date
) -> None:
    async with sim() as (_, client):
        result = await run_parse_task(client, "sim", make_input(sentence))
    assert result.output is not None, result.vague
    assert result.output.title == title
    assert _due(result) == day


def test_copied_placeholder_steps_are_rejected() -> None:
    with pytest.raises(OutputInvalid) as info:
        parse_subtasks(json.dumps({"subtasks": ["Step One", "Step Two", "Step Three"]}))
    assert any("placeholders" in e for e in info.value.errors)


def test_prompt_examples_cannot_be_copied_as_a_valid_answer() -> None:
    from taskmesh.capabilities.parse_task.prompts import render_core, render_subtasks

    subtasks = render_subtasks("v2")
    example = subtasks[subtasks.index('{"subtasks"') :].split(" or ")[0]
    with pytest.raises(OutputInvalid):
        parse_subtasks(example)
    core = render_core(CONFIG, datetime(2024, 1, 15, tzinfo=UTC), "v2")
    example = core[core.index('{"result": "task"') :].split("\n  where")[0]
    with pytest.raises(OutputInvalid):
        parse_core(example, CONFIG)
