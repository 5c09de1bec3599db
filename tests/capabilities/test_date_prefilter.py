"""The date resolver's prefilter (dates.Gate) changes its cost, never its answers: ``resolve``
equals ``resolve_exhaustive`` (every pattern run) over every sentence the tests, the
evaluation and the screening corpus hold, and over generated text."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskmesh.capabilities.parse_task import dates
from taskmesh.evals.cases import ALL_CASES
from tests.capabilities.test_multilingual import DATED, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
#: Reference days: the tests' Monday, a Sunday, a leap day, the last days of a year.
DAYS = (date(2024, 1, 15), date(2024, 1, 21), date(2024, 2, 29), date(2024, 12, 30))
SIMULATOR_SENTENCES = [
    "Finish it the day after tomorrow",
    "Submit Q2 report by next Friday",
    "Renew passport next week",
    "Team offsite next month",
    "Send invoice in 3 days",
    "Close the books by end of month",
    "Wrap up by the end of the week",
    "File taxes by April 15th",
    "Pay rent on 2024-02-01",
    "Plan something soon",
    "Read a book sometime",
    "Call mom today, then the bank tomorrow morning or on Monday",
]


def corpus() -> list[str]:
    sentences = [text for text, _ in [*DATED, *VARIANTS]]
    sentences += [case.text for case in ALL_CASES]
    sentences += SIMULATOR_SENTENCES
    for path in sorted((ROOT / "data" / "screening").glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            sentences += [json.loads(line)["text"] for line in lines if line.strip()]
    # Case must not matter: IGNORECASE patterns, lower-cased gates.
    return sentences + [s.upper() for s in sentences] + [s.title() for s in sentences]


CORPUS = corpus()


def test_the_corpus_is_large_and_mostly_dated() -> None:
    assert len(CORPUS) > 3000
    assert sum(1 for s in CORPUS if dates.resolve_exhaustive(s, DAYS[0]).candidates) > 300


@pytest.mark.parametrize("today", DAYS, ids=str)
def test_the_fast_path_answers_as_the_exhaustive_one_over_the_corpora(today: date) -> None:
    differing = [s for s in CORPUS if dates.resolve(s, today) != dates.resolve_exhaustive(s, today)]
    assert differing == []


#: Pieces of date phrases, gate words among them, to build text that nearly matches.
PIECES = [
    "the", "day", "after", "tomorrow", "today", "tonight", "this", "morning", "in", "en",
    "dans", "tra", "two", "3", "12", "weeks", "days", "semanas", "jours", "tagen", "giorni",
    "end", "of", "month", "week", "fin", "de", "mes", "mois", "monat", "next", "la", "semaine",
    "prochaine", "settimana", "prossima", "el", "mes que viene", "2024-02-01", "2024-13-40",
    "April", "apr.", "15th", "Friday", "friday", "Freitag", "venerdi", "domingo", "soon",
    "some day", "later", "asap", "-", "'", ",", "by", "on", "at the latest", "hoy", "morgen",
    "demain", "dopodomani", "monatsende", "ce soir", "aujourd'hui", "mañana", "viernes",
    "próxima", "пятницу", "завтра", "明天", "下周五", "금요일", "วันศุกร์", "غدا", "Ÿ", "K", "ſ",
]  # fmt: skip
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=12).map(" ".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.sampled_from(DAYS))
def test_the_fast_path_answers_as_the_exhaustive_one_over_generated_text(
    sentence: str, today: date
) -> None:
    assert dates.resolve(sentence, today) == dates.resolve_exhaustive(sentence, today)


ASCII = st.characters(codec="ascii")


@pytest.mark.parametrize(
    "rule", [rule for rule in dates._PATTERNS if rule[3] is not None], ids=lambda r: r[0]
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_ascii_match_of_a_pattern_holds_one_of_its_gate_words(
    rule: tuple[str, object, object, tuple[str, ...]], data: st.DataObject
) -> None:
    _, pattern, _, words = rule
    text = data.draw(st.from_regex(pattern, alphabet=ASCII))  # type: ignore[call-overload]
    assert any(word in text.lower() for word in words), text
