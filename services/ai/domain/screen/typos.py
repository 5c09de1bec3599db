"""Misspelt override words read as the words they misspell ("Igmore all prevoius instrucions").

data/vocabulary.json's `typo_words` lists the long words of an override written out in full,
by language. A word of the text of at least `MIN_LETTERS` letters that is not one of them but
lies one edit from one (a letter added, dropped or changed, or two neighbours swapped), with the
same first letter, is replaced by it. A word the vocabulary knows is left alone ("sistem",
"esquema", "regler" are words of other languages one edit from "system", "esqueca", "regles"),
and so is a word that only adds an ending ("ignored", "instructional"). Six letters or more:
at one edit, shorter words reach ordinary ones ("neger", "forgo").

An index of each listed word with each letter dropped finds the candidates with one dictionary
look-up per letter of the text's word, so the cost grows linearly with the text.
"""

from __future__ import annotations

import re
from functools import cache

from . import vocabulary

MIN_LETTERS = 6
_WORD = re.compile(rf"[^\W\d_]{{{MIN_LETTERS},}}")


@cache
def _index() -> tuple[frozenset[str], dict[str, str]]:
    words = vocabulary.typo_words()
    index: dict[str, str] = {}
    for word in sorted(words):
        index.setdefault(word, word)
        for i in range(len(word)):
            index.setdefault(word[:i] + word[i + 1 :], word)
    return words, index


def _fix(match: re.Match[str]) -> str:
    token = match.group(0)
    words, index = _index()
    if token in words or vocabulary.known_word(token):
        return token
    for i in range(-1, len(token)):
        candidate = token if i < 0 else token[:i] + token[i + 1 :]
        word = index.get(candidate)
        if word is not None and word[0] == token[0] and not token.startswith(word):
            return word
    return token


def corrected(canonical: str) -> str:
    """The normalised text with each misspelt override word replaced by the word it misspells
    (see the module docstring); every other word unchanged."""
    return _WORD.sub(_fix, canonical)
