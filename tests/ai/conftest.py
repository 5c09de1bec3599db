"""Screening figures for the terminal summary, so they show without -s."""

from __future__ import annotations

from collections import Counter

import pytest

# Filled by tests/ai/test_screening.py as its tests run; read once at the end of the session.
ATTACKS_BLOCKED: Counter[str] = Counter()
ATTACKS_TOTAL: Counter[str] = Counter()
BENIGN_RESULTS: dict[str, bool] = {}


@pytest.fixture
def screening_figures() -> tuple[Counter[str], Counter[str], dict[str, bool]]:
    return ATTACKS_BLOCKED, ATTACKS_TOTAL, BENIGN_RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ATTACKS_TOTAL and not BENIGN_RESULTS:
        return
    terminalreporter.section("prompt-injection screening")
    if ATTACKS_TOTAL:
        blocked, total = sum(ATTACKS_BLOCKED.values()), sum(ATTACKS_TOTAL.values())
        terminalreporter.write_line(
            f"attacks blocked: {blocked}/{total} ({100 * blocked / total:.1f} %)"
        )
        for pattern in sorted(ATTACKS_TOTAL):
            terminalreporter.write_line(
                f"  {pattern}: {ATTACKS_BLOCKED[pattern]}/{ATTACKS_TOTAL[pattern]}"
            )
    if BENIGN_RESULTS:
        passed = sum(BENIGN_RESULTS.values())
        terminalreporter.write_line(f"benign passed: {passed}/{len(BENIGN_RESULTS)}")
