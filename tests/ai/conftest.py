"""The screening report: verdicts on the corpus, computed once per session, and printed in the
terminal summary (blocked % by family, language and disguise; refused % by kind)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from services.ai.domain.screening import Screener, Verdict, default_screener
from tests.ai.corpus import Sample, samples


@dataclass
class Report:
    split: str
    verdicts: list[tuple[Sample, Verdict]] = field(default_factory=list)

    def attacks(self) -> list[tuple[Sample, Verdict]]:
        return [(s, v) for s, v in self.verdicts if s.attack]

    def honest(self) -> list[tuple[Sample, Verdict]]:
        return [(s, v) for s, v in self.verdicts if not s.attack]

    def missed(self) -> list[Sample]:
        return [s for s, v in self.attacks() if not v.blocked]

    def refused(self) -> list[Sample]:
        return [s for s, v in self.honest() if v.blocked]


REPORTS: dict[str, Report] = {}


@pytest.fixture(scope="session")
def screener() -> Screener:
    """The shipped screener, its model loaded once for the whole session."""
    return default_screener()


@pytest.fixture(scope="session")
def corpus_report(screener: Screener):
    def run(split: str) -> Report:
        if split not in REPORTS:
            report = Report(split)
            report.verdicts = [(s, screener.screen(s.text)) for s in samples(split)]
            REPORTS[split] = report
        return REPORTS[split]

    return run


def _rows(title: str, pairs: list[tuple[Sample, Verdict]], key, write) -> None:
    total: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for sample, verdict in pairs:
        total[key(sample)] += 1
        blocked[key(sample)] += verdict.blocked
    cells = [
        f"{k} {100 * blocked[k] / total[k]:.0f}% ({blocked[k]}/{total[k]})" for k in sorted(total)
    ]
    write(f"  {title}: " + ", ".join(cells))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("prompt-injection screening (shipped configuration)")
    for split in sorted(REPORTS, reverse=True):
        report = REPORTS[split]
        attacks, honest = report.attacks(), report.honest()
        blocked = sum(v.blocked for _, v in attacks)
        refused = sum(v.blocked for _, v in honest)
        label = (
            "reserved split: no training, no thresholds" if split == "report" else "tuning split"
        )
        write(
            f"{split} ({label}): attacks blocked {blocked}/{len(attacks)} "
            f"({100 * blocked / len(attacks):.1f} %), honest refused {refused}/{len(honest)} "
            f"({100 * refused / len(honest):.1f} %)"
        )
        _rows("blocked by family", attacks, lambda s: s.family, write)
        _rows("blocked by language", attacks, lambda s: s.lang, write)
        _rows("blocked by disguise", attacks, lambda s: s.disguise, write)
        _rows("refused by kind", honest, lambda s: s.family, write)
        for sample in report.missed():
            write(f"  missed [{sample.lang}/{sample.disguise}]: {sample.text[:90]!r}")
