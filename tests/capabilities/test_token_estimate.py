"""The token estimate counts what its docstring says, whatever the script of the text."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from taskmesh.capabilities.llm_calls import estimate_tokens


@given(st.text())
def test_estimate_is_a_third_of_ascii_plus_one_per_other_character(text: str) -> None:
    ascii_chars = sum(1 for c in text if ord(c) < 128)
    assert estimate_tokens(text) == math.ceil(ascii_chars / 3) + len(text) - ascii_chars
