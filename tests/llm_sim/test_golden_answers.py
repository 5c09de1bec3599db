"""The simulator answers every pinned sentence exactly as the golden file says
(``tests/llm_sim/golden.py``), through the engine and, for a sample, through HTTP."""

from __future__ import annotations

import httpx
import pytest

from llm_sim import SimOptions, SimServer
from llm_sim.engine import _core_content, _subtasks_content
from scripts.bench_peer.sentences import DISTINCT, sentence
from tests.llm_sim.golden import REFERENCE_TIMES, answers, load, messages

pytestmark = pytest.mark.timeout(600)


def test_every_answer_matches_the_golden_file() -> None:
    # Answers cached by an earlier test were computed by the same code, but start cold.
    _core_content.cache_clear()
    _subtasks_content.cache_clear()
    expected, actual = load(), answers()
    assert actual.keys() == expected.keys()
    for moment, kinds in expected.items():
        for kind, contents in kinds.items():
            got = actual[moment][kind]
            assert len(got) == len(contents)
            wrong = [i for i, (a, b) in enumerate(zip(got, contents, strict=True)) if a != b]
            assert not wrong, (
                f"{len(wrong)} {kind} answers at {moment} differ; first, sentence {wrong[0]}: "
                f"{got[wrong[0]]!r} != {contents[wrong[0]]!r}"
            )


async def test_http_answers_match_the_golden_file() -> None:
    """The core answer as a client reads it off the wire (the subtasks prompt resolves
    against the server's own clock, so only the engine test pins it)."""
    now = REFERENCE_TIMES[0]
    golden = load()[now.isoformat()]["core"]
    sample = range(0, DISTINCT, 97)
    async with SimServer(SimOptions(), port=0) as server:
        async with httpx.AsyncClient(timeout=10) as http:
            for n in sample:
                response = await http.post(
                    f"{server.base_url}/chat/completions",
                    json={"model": "m", "messages": messages("core", sentence(n), now)},
                )
                assert response.status_code == 200
                content = response.json()["choices"][0]["message"]["content"]
                assert content == golden[n], sentence(n)
