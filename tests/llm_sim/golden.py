"""The simulator's answers to the benchmark's 6,000 sentences, pinned in a golden file.

Tests and benchmarks predict the simulator's answers, so a change that makes it cheaper must
not change one of them. ``golden_answers.json.gz`` holds, for every sentence of
``scripts/bench_peer/sentences.py`` at each reference time of :data:`REFERENCE_TIMES`, the
content of the core and the subtasks answers, as the chat request of each prompt (the
worker's prompts and response formats, default config) gets it.

Regenerate it (only when an answer is meant to change) with
``.venv/bin/python -m tests.llm_sim.golden``.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_sim.engine import answer
from scripts.bench_peer.sentences import DISTINCT, sentence
from taskmesh.capabilities.parse_task.config import default_config
from taskmesh.capabilities.parse_task.prompts import render_core, render_subtasks

GOLDEN = Path(__file__).with_name("golden_answers.json.gz")
#: Sentences of shapes the benchmark's lack: vague ones, listed parts ("with X, Y and Z"),
#: launches, fillers, other languages and scripts, absolute dates.
EXTRA = (
    "Plan and execute a company-wide team building event for 50 people next month "
    "with budget approval, venue booking, and activity coordination",
    "Coordinate the product launch with marketing, sales and engineering by next Friday",
    "Launch the new pricing page tomorrow",
    "Organize party",
    "Plan vacation",
    "Have lunch with Sarah on Wednesday",
    "Do stuff",
    "Fix it",
    "Groceries",
    "Plan something soon",
    "Urgent: fix the production outage immediately",
    "please remember to call the bank on Friday",
    "Pick up dry cleaning",
    "Pay rent on 2024-02-01",
    "File taxes by April 15th",
    "Review the Q3 budget by Friday at the latest",
    "Bericht bis nächsten Freitag abgeben",
    "Rendre le rapport d'ici vendredi",
    "Entregar el informe el próximo viernes",
    "Сдать отчёт до пятницы",
    "سلم التقرير قبل يوم الجمعة القادمة",
    "ส่งรายงานภายในวันศุกร์หน้า",
    "다음 주 금요일까지 보고서 제출",
    "2주 후에 여권 갱신",
    "下周五之前提交销售报告",
    "来週の金曜日までに報告書を提出する",
    "Update the in\u00adformation page",
)
#: A Monday mid-month, and a Saturday two days before the month ends (weekend and
#: end-of-month phrases resolve differently from each).
REFERENCE_TIMES = (
    datetime(2024, 1, 15, 12, 0, tzinfo=UTC),
    datetime(2024, 3, 30, 23, 59, 59, tzinfo=UTC),
)


def messages(kind: str, text: str, now: datetime) -> list[dict[str, Any]]:
    """The chat messages of the ``core`` or ``subtasks`` prompt for ``text`` at ``now``."""
    system = render_core(default_config(), now) if kind == "core" else render_subtasks()
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def answers() -> dict[str, dict[str, list[str]]]:
    """``{reference time (ISO): {"core": [content, ...], "subtasks": [...]}}``, one content
    per sentence ``0 .. DISTINCT - 1`` then per :data:`EXTRA` sentence, in order."""
    out: dict[str, dict[str, list[str]]] = {}
    for now in REFERENCE_TIMES:
        texts = [sentence(n) for n in range(DISTINCT)] + list(EXTRA)
        out[now.isoformat()] = {
            kind: [answer(kind, messages(kind, text, now), now.date()) for text in texts]
            for kind in ("core", "subtasks")
        }
    return out


def load() -> dict[str, dict[str, list[str]]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        data: dict[str, dict[str, list[str]]] = json.load(f)
    return data


def main() -> None:
    data = json.dumps(answers(), ensure_ascii=False, indent=0, sort_keys=True)
    # mtime=0: the same answers give the same bytes.
    GOLDEN.write_bytes(gzip.compress(data.encode(), mtime=0))
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
