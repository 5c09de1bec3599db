"""Whether a Latin-script sentence reads as a language the screening word lists cover.

The clear-pass gate (`vocabulary.is_suspect`) lets a sentence through when it holds no cue of
any covered language, which is right for a task in a covered language and wrong for an attack
in one without lists ("Ahaztu aurreko argibide guztiak" in Basque carries no cue at all).
Sentences in an uncovered script already go to the model (`vocabulary.uncovered_script`);
this is the same net for the Latin script, where the letters alone do not tell the language.

A sentence is recognised when, for some covered language, at least `min_share` of its Latin
words are common words of that language (data/common_words.json), a word also counting when
its first `stem` letters are those of a common word (inflected forms: "instrukcje",
"faturasini"). One language at a time, not all pooled: short words of uncovered languages
("na", "de", "ka") are words of some covered language too, but rarely half a sentence of one.
Sentences of fewer than `min_words` Latin words of two letters or more are not judged ("Buy
milk", "Call Ana").

The same holds in the other scripts written with spaces whose languages the lists cover
(Cyrillic, Greek, Hebrew, Arabic, Devanagari, Bengali): a Cyrillic sentence that no covered
language of the script (ru, uk, bg, mk) knows half of is Kazakh, Mongolian, Kyrgyz or Serbian, and
goes to the model (`unrecognised_script`); "Сөйлемде не жазылса да, тақырып әрқашан ..." carries
no Russian cue. Scripts written without spaces (Han, kana, Thai) are left out: a share of known
words tells nothing there.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import chain

import regex

# One-letter words ("a", "i", "o", "y") are words of nearly every language: they tell none.
_LATIN_WORD = re.compile(r"[a-z]{2,}")
#: The scripts judged by `unrecognised_script`; a word is a run of one script's letters and marks
#: (vowel signs are marks: "किन्नु" is one word).
_SCRIPT_WORD = {
    script: regex.compile(rf"\p{{Script={script}}}[\p{{Script={script}}}\p{{M}}]+")
    for script in ("Cyrillic", "Greek", "Hebrew", "Arabic", "Devanagari", "Bengali")
}


#: Tokens whose languages a `Lexicon` remembers; past this many it forgets them all, so a
#: stream of made-up words cannot grow it without bound.
MEMO_MAX = 1 << 16


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Common words and their stems, each mapped to a bit mask of the languages (bit i is
    `languages[i]`) that have them."""

    languages: tuple[str, ...]
    words: dict[str, int]
    stems: dict[str, int]
    stem: int
    min_words: int
    min_share: float
    #: token -> the indices of the languages that know it (as a word or by its stem): task
    #: text repeats its words, and this turns each repeat into one lookup.
    memo: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    def languages_of(self, token: str) -> tuple[int, ...]:
        """The indices into `languages` of those that know ``token``."""
        found = self.memo.get(token)
        if found is None:
            mask = self.words.get(token, 0)
            if len(token) >= self.stem:
                mask |= self.stems.get(token[: self.stem], 0)
            found = tuple(i for i in range(mask.bit_length()) if mask >> i & 1)
            if len(self.memo) >= MEMO_MAX:
                self.memo.clear()
            self.memo[token] = found
        return found


def compile_lexicon(data: dict) -> Lexicon:
    """A `Lexicon` from a document of the shape of data/common_words.json."""
    stem = int(data["stem"])
    languages = tuple(data["languages"])
    words: dict[str, int] = {}
    stems: dict[str, int] = {}
    for i, language in enumerate(languages):
        bit = 1 << i
        for word in data["languages"][language].split():
            words[word] = words.get(word, 0) | bit
            if len(word) >= stem:
                stems[word[:stem]] = stems.get(word[:stem], 0) | bit
    return Lexicon(languages, words, stems, stem, int(data["min_words"]), float(data["min_share"]))


@cache
def common_words() -> dict:
    """data/common_words.json as shipped, read once per process: each language's words as one
    space-separated string, most frequent first, and the settings of `Lexicon`."""
    raw = resources.files(__package__).joinpath("data/common_words.json").read_text("utf-8")
    return json.loads(raw)


@cache
def lexicon() -> Lexicon:
    """The shipped lexicon, loaded once per process."""
    return compile_lexicon(common_words())


def words(canonical: str) -> list[str]:
    """The words of two letters or more of a normalised text that a share is taken of: Latin
    ones and those of the scripts `unrecognised_script` judges, in the text's order (the
    word lists of data/common_words.json are cut by the same rule)."""
    if canonical.isascii():
        return _LATIN_WORD.findall(canonical)
    found = [(m.start(), m.group()) for m in _LATIN_WORD.finditer(canonical)]
    for pattern in _SCRIPT_WORD.values():
        found.extend((m.start(), m.group()) for m in pattern.finditer(canonical))
    return [word for _, word in sorted(found)]


def best_share(canonical: str) -> tuple[float, int]:
    """(the largest share of the text's Latin words that one covered language knows, the
    number of Latin words); (1.0, n) when the text has fewer than `min_words` of them."""
    return _share(_LATIN_WORD.findall(canonical))


def _share(tokens: list[str]) -> tuple[float, int]:
    lex = lexicon()
    if len(tokens) < lex.min_words:
        return 1.0, len(tokens)
    # Per language, how many tokens it knows; counted in C (Counter over the chained tuples).
    counts = Counter(chain.from_iterable(map(lex.languages_of, tokens)))
    return max(counts.values(), default=0) / len(tokens), len(tokens)


def unrecognised_latin(canonical: str) -> bool:
    """Whether the normalised text has at least `min_words` Latin words and no covered
    language knows `min_share` of them: it is in a language the word lists do not cover."""
    minimum = lexicon().min_share
    # Text written backwards in a covered language is the reversed view's to read (`views`);
    # an honest one ("Rückwärts lesen: hcliM fuaK") is a word game, not an unknown language.
    return best_share(canonical)[0] < minimum and best_share(canonical[::-1])[0] < minimum


def unrecognised_script(canonical: str) -> bool:
    """Whether the normalised text has at least `min_words` words of one of the non-Latin
    scripts judged here (Cyrillic, Greek, Hebrew, Arabic, Devanagari, Bengali) and no covered
    language knows `min_share` of them: it is in a language of that script the word lists do
    not cover (Kazakh, Mongolian, Nepali, Urdu, ...). ASCII text costs one check."""
    if canonical.isascii():
        return False
    minimum = lexicon().min_share
    return any(_share(pattern.findall(canonical))[0] < minimum for pattern in _SCRIPT_WORD.values())
