"""The multilingual screening vocabulary (data/vocabulary.json) compiled to matchers.

The word lists are data so a language is added by editing JSON, not code. Each family matches
where an `act` word and an `object` word share a clause within `window` characters, in either
order (German and Japanese put the object first), or where a `phrase` occurs. These hits do not
block alone: the look-alike corpus shows honest sentences that use the same words ("ignore the
spam folder", "zeig mir die Regeln des Turniers"), so the model must agree (see `cascade`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from confusable_homoglyphs import categories

from .normalise import normalize
from .patterns import PatternType

# Scripts written without spaces between words: a stem matches anywhere there.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_CLAUSE_GAP = r"[^.!?\n。！？]"


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Compiled matchers: `families` in screening order, `suspect` for the cascade's gate."""

    families: tuple[tuple[PatternType, re.Pattern[str]], ...]
    strong: tuple[tuple[PatternType, re.Pattern[str]], ...]
    suspect: re.Pattern[str]
    covered_scripts: frozenset[str]


_BOUNDARY = "\0"  # stands for \b at the end of a term in the trie


def _term(raw: str) -> tuple[bool, str]:
    """(matches only at a word start, the normalised term with _BOUNDARY where \b is needed)."""
    term = normalize(raw) if raw.strip() else raw
    if not term:
        return False, ""
    if raw.endswith(" ") and not term.endswith(" "):
        term += _BOUNDARY
    if _UNSPACED.search(term) or not term[0].isalnum():
        return False, term
    # A stem matches at a word start; a short one must be the whole word ("ai", not "air").
    if len(term) <= 3 and not term.endswith(_BOUNDARY):
        term += _BOUNDARY
    return True, term


def _trie_regex(terms: set[str]) -> str:
    # One alternation of a thousand words is tried word by word at every position; a prefix
    # tree lets the regex engine reject a position on its first character.
    trie: dict = {}
    for term in terms:
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        ends = "" in node
        branches = [
            (r"\b" if ch == _BOUNDARY else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return emit(trie)


def _alternation(by_language: dict[str, list[str]]) -> str:
    word_start: set[str] = set()
    anywhere: set[str] = set()
    for words in by_language.values():
        for word in words:
            at_start, term = _term(word)
            if term:
                (word_start if at_start else anywhere).add(term)
    parts = []
    if word_start:
        parts.append(r"\b" + _trie_regex(word_start))
    if anywhere:
        parts.append(_trie_regex(anywhere))
    return "(?:" + "|".join(parts) + ")" if parts else "(?!)"


def _family_regex(lists: dict, window: int) -> re.Pattern[str]:
    act, obj = _alternation(lists["act"]), _alternation(lists["object"])
    phrase = _alternation(lists["phrase"])
    gap = f"{_CLAUSE_GAP}{{0,{window}}}?"
    return re.compile(f"{act}{gap}{obj}|{obj}{gap}{act}|{phrase}")


def compile_vocabulary(data: dict) -> Vocabulary:
    """Matchers for a vocabulary document of the shape of data/vocabulary.json."""
    window = int(data["window"])
    families = []
    strong = []
    suspect_terms = dict(data["suspect"])
    for name, family in data["families"].items():
        families.append((PatternType(name), _family_regex(family, window)))
        strong.append((PatternType(name), _family_regex(family["strong"], window)))
        # An object word alone ("rules", "todo", "系统") is ordinary; a verb or a phrase is what
        # makes a sentence worth the model's time.
        for lists in (family, family["strong"]):
            for part in ("act", "phrase"):
                for lang, words in lists[part].items():
                    suspect_terms.setdefault(f"{lang}-{part}", []).extend(words)
    return Vocabulary(
        families=tuple(families),
        strong=tuple(strong),
        suspect=re.compile(_alternation(suspect_terms)),
        covered_scripts=frozenset(data["covered_scripts"]),
    )


@cache
def vocabulary() -> Vocabulary:
    """The shipped vocabulary, compiled once per process."""
    raw = resources.files(__package__).joinpath("data/vocabulary.json").read_text("utf-8")
    return compile_vocabulary(json.loads(raw))


def families_hit(canonical: str) -> list[PatternType]:
    """Families whose multilingual vocabulary occurs in the normalised text."""
    return [family for family, pattern in vocabulary().families if pattern.search(canonical)]


def strong_family(canonical: str) -> PatternType | None:
    """The first family whose `strong` vocabulary (blocks alone) occurs in the text."""
    for family, pattern in vocabulary().strong:
        if pattern.search(canonical):
            return family
    return None


def is_suspect(canonical: str) -> bool:
    """Whether the normalised text holds any word an attack needs, in any covered language."""
    return vocabulary().suspect.search(canonical) is not None


def uncovered_script(text: str) -> bool:
    """Whether `text` has letters of a script the vocabulary does not cover (Thai, Greek, …):
    such sentences go to the model, which reads about 100 languages."""
    covered = vocabulary().covered_scripts
    return any(
        ch.isalpha() and not ch.isascii() and categories.alias(ch) not in covered for ch in text
    )
