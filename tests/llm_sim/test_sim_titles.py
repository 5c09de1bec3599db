"""The simulator's titles: words split by Unicode's rules, and a date phrase removed whole, with
its preposition and modifiers (no "by", "prochain" or "까지" left dangling)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llm_sim.engine import answer_core, read_core_prompt, read_sentence
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.capabilities.parse_task.prompts import render_core

NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
ZWNJ, SOFT_HYPHEN, ZWJ = "\u200c", "\u00ad", "\u200d"


def _title(text: str) -> str:
    task = answer_core(text, read_core_prompt(render_core(default_config(), NOW)))["task"]
    assert task is not None, text
    return str(task["title"])


@pytest.mark.parametrize(
    ("text", "word"),
    [
        (f"می{ZWNJ}خواهم گزارش را بنویسم", f"می{ZWNJ}خواهم"),  # Persian: ZWNJ inside a word
        (f"Update the in{SOFT_HYPHEN}formation page", f"in{SOFT_HYPHEN}formation"),
        (f"नमस्ते क्ष{ZWJ}त्र दुनिया", f"क्ष{ZWJ}त्र"),  # Devanagari: a ZWJ ligature request
    ],
)
def test_format_characters_do_not_split_a_word(text: str, word: str) -> None:
    reading = read_sentence(text, NOW.date())
    assert word in reading.words
    assert len(reading.words) == len(text.split())


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Submit the Q2 report by next Friday", "Submit the Q2 Report"),
        ("Send the invoice no later than Friday", "Send the Invoice"),
        ("Review the Q3 budget by Friday at the latest", "Review the Q3 Budget"),
        ("Book the flights for next Friday", "Book the Flights"),
        ("Entregar el informe el próximo viernes", "Entregar el Informe"),
        ("Entregar el informe el viernes próximo", "Entregar el Informe"),
        ("Rendre le rapport vendredi prochain", "Rendre le Rapport"),
        ("Rendre le rapport d'ici vendredi", "Rendre le Rapport"),
        ("Bericht bis nächsten Freitag abgeben", "Bericht Abgeben"),
        ("Consegnare il rapporto entro venerdì prossimo", "Consegnare il Rapporto"),
        ("Сдать отчёт в следующую пятницу", "Сдать отчёт"),
        ("Сдать отчёт до пятницы", "Сдать отчёт"),
        ("다음 주 금요일까지 보고서 제출", "보고서 제출"),
        ("2주 후에 여권 갱신", "여권 갱신"),
        ("سلم التقرير قبل يوم الجمعة القادمة", "سلم التقرير"),
        ("ส่งรายงานภายในวันศุกร์หน้า", "ส่งรายงาน"),
    ],
)
def test_date_phrase_leaves_no_dangling_modifier(text: str, title: str) -> None:
    assert _title(text).casefold() == title.casefold()
