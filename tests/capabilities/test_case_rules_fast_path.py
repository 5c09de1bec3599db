"""The text rules' ASCII fast paths (schema.is_unspaced, normalise_case, title_case) answer as
the general per-character rules do, for any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from taskmesh.capabilities.parse_task import schema

_UNSPACED = schema._UNSPACED
_LATIN = schema._LATIN


# The rules as they were written before the fast paths, character by character.
def reference_capitalise(word: str) -> str:
    for i, char in enumerate(word):
        if char.isalpha():
            if char.islower() and not any(c.isupper() for c in word[i + 1 :]):
                return word[:i] + char.upper() + word[i + 1 :]
            return word
    return word


def reference_title_case(text: str) -> str:
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        inner = 0 < i < len(words) - 1
        if inner and word.casefold() in schema._SMALL_WORDS:
            out.append(word.lower())
        else:
            out.append("-".join(reference_capitalise(part) for part in word.split("-")))
    return " ".join(out)


def reference_is_unspaced(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    return sum(1 for c in letters if _UNSPACED.match(c)) * 2 >= len(letters)


def reference_normalise_case(phrase: str) -> str:
    letters = [c for c in phrase if c.isalpha()]
    latin = sum(1 for c in letters if _LATIN.match(c))
    if letters and latin * 2 >= len(letters):
        return reference_title_case(phrase)
    return reference_capitalise(phrase) if phrase else phrase


WORDS = ["the", "and", "of", "Q2", "iPhone", "re-do", "x-ray", "OK", "état", "ǅemal", "准备", "ส่ง"]
PHRASES = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="ascii"), max_size=30),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=8).map(" ".join),
)


@settings(max_examples=600, deadline=None)
@given(PHRASES)
def test_the_text_rules_answer_as_the_character_by_character_ones(phrase: str) -> None:
    assert schema.is_unspaced(phrase) == reference_is_unspaced(phrase)
    assert schema.normalise_case(phrase) == reference_normalise_case(phrase)
    assert schema.title_case(phrase) == reference_title_case(phrase)
