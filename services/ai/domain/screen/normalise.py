"""The canonical text form the screening patterns and the model see.

Lower-case text with invisible and format characters removed, compatibility forms folded
(full-width, mathematical and circled letters), look-alike letters folded to Latin only inside
words that mix scripts (so Russian or Greek sentences stay themselves), spaced-out letters joined
and simple leetspeak undone except in quantities ("7pm", "3rd"), which are read too in a text
written in leetspeak when they spell a common word ("4nd" -> "and").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

from . import languages

# Letters that the Unicode confusables data does not map to Latin but that attackers use:
# small capitals and dotless letters.
_EXTRA_HOMOGLYPHS: dict[str, str] = {
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʋ": "u", "ſ": "s",
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # Capital I look-alikes, which the confusables data maps to "l" first.
    "І": "i", "і": "i", "Ι": "i", "Ӏ": "i", "Ї": "i", "ї": "i",
    # Lower-case forms the confusables data lists only for capitals.
    "η": "n", "ν": "v", "μ": "u", "υ": "u", "γ": "y", "ω": "w", "к": "k", "м": "m",
    "т": "t", "н": "h", "в": "b", "г": "r", "п": "n", "ь": "b", "ι": "i", "κ": "k",
}  # fmt: skip

# Small capitals and other Latin-script look-alikes are folded everywhere: no language writes
# words with them (dotless ı becomes i, which costs a Turkish sentence nothing here).
_LATIN_LOOKALIKES = str.maketrans(
    {k: v for k, v in _EXTRA_HOMOGLYPHS.items() if "LATIN" in unicodedata.name(k, "")}
)

# Invisible characters outside the format (Cf) and mark (Mn, Me) categories, which are dropped
# wholesale: Hangul fillers and the blank braille cell render as nothing in most fonts.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})
# Letters with a stroke have no decomposition; folded like accents ("đó" -> "do", "słowo").
_STROKED = str.maketrans("đĐłŁøØħĦ", "dDlLoOhH")
_KEPT_MARKS_DROPPED = frozenset({"Cf"})
_SPACE_CATEGORIES = frozenset({"Zs", "Cc"})

#: Leetspeak's digits and signs -> the letters they stand for.
LEET_TABLE = str.maketrans("103457@$", "ioeastas")
_TOKEN = re.compile(r"[a-z0-9@$]+")
_HAS_LETTER = re.compile(r"[a-z]")
_HAS_LEET = re.compile(r"[013457@$]")
# Quantities keep their digits: "7pm" or "3d" are not leetspeak.
_QUANTITY = re.compile(
    r"\d+(?:st|nd|rd|th|am|pm|k|m|s|h|d|x|kg|km|mb|gb|tb|min|hr|hrs|mo|yr|yrs|ml|g|lb|lbs|oz|px|p)"
)

# Punctuation slipped inside a word ("ig-nore", "in_struc*tions") is dropped; sentence
# punctuation is kept because it separates words that the patterns anchor on.
_INTRA_WORD = re.compile(r"(?<=[a-z0-9@$])[-_*~^|+`'\u2018\u2019\u00b7\u2022]+(?=[a-z0-9@$])")
# Three or more single characters separated by non-alphanumerics: "i g n o r e", "i.g.n.o.r.e".
_SPACED_RUN = re.compile(r"(?<![a-z0-9@$])[a-z0-9@$](?:[^a-z0-9@$]++[a-z0-9@$](?![a-z0-9@$])){2,}")
_UNIT = re.compile(r"([a-z0-9@$])")
_HSPACE = re.compile(r"[ \t]+")
_LINE_GAP = re.compile(r" ?\n[\n ]*")
_WORD = re.compile(r"\w+")
_FOLDED_SCRIPTS = frozenset({"CYRILLIC", "GREEK", "ARMENIAN", "LATIN"})


@lru_cache(maxsize=4096)
def _latin_twin(ch: str) -> str | None:
    """The Latin letter `ch` passes for, from the Unicode confusables data (UTS #39)."""
    if ch in _EXTRA_HOMOGLYPHS:
        return _EXTRA_HOMOGLYPHS[ch]
    found = confusables.is_confusable(ch, greedy=True, preferred_aliases=["latin"])
    if not found:
        return None
    for glyph in found[0]["homoglyphs"]:
        twin = glyph["c"]
        if twin.isascii() and twin.isalpha():
            return twin.lower()
    return None


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    return categories.alias(ch)


def _fold_word(match: re.Match[str], latin_text: bool) -> str:
    word = match.group(0)
    if word.isascii():
        return word
    scripts = {_script(c) for c in word if c.isalpha()}
    scripts.discard("COMMON")
    if not scripts <= _FOLDED_SCRIPTS:
        return word
    # Fold a word that mixes Latin with look-alike scripts ("Іgnоrе"), or a word made only of
    # look-alikes inside Latin text ("ΙGΝΟRΕ all"); a Russian or Greek sentence stays itself.
    if not ("LATIN" in scripts and len(scripts) > 1) and not (
        latin_text and "LATIN" not in scripts
    ):
        return word
    twins = [_latin_twin(c) if not c.isascii() else c for c in word]
    if not latin_text and "LATIN" not in scripts and any(t is None for t in twins):
        return word
    return "".join(t if t is not None else c for t, c in zip(twins, word, strict=True))


def _mostly_latin(text: str) -> bool:
    latin = other = 0
    for ch in text:
        if ch.isalpha():
            if ch.isascii():
                latin += 1
            else:
                other += 1
    return latin > other


def fold_unicode(text: str, keep_marks: bool = False) -> str:
    """Compatibility-folded, invisible-free, case-folded text (no leetspeak or joining).

    Accents and vowel signs (combining marks) are dropped unless `keep_marks`: the patterns want
    "regle" for "règle", the model reads Hindi and Arabic better with their marks.
    """
    dropped = _KEPT_MARKS_DROPPED if keep_marks else _DROPPED_CATEGORIES
    out: list[str] = []
    if not keep_marks:
        text = text.translate(_STROKED)
    for ch in unicodedata.normalize("NFKD", text):
        if ch in _LINE_BREAKS:
            out.append("\n")
            continue
        category = unicodedata.category(ch)
        if category in dropped or ch in _INVISIBLE:
            continue
        if category == "Cc" and ch != "\t":
            # Backspace, escape and the other controls render as nothing: dropped like the
            # format characters, so "ig\bnore" reads "ignore" (tab stays a space).
            continue
        if category in _SPACE_CATEGORIES:
            out.append(" ")
            continue
        out.append(ch)
    folded = "".join(out).translate(_LATIN_LOOKALIKES)
    latin_text = _mostly_latin(folded)
    folded = _WORD.sub(lambda m: _fold_word(m, latin_text), folded)
    return unicodedata.normalize("NFC", folded).casefold()


def _fold_ascii(text: str) -> str:
    out = text.lower()
    if out.isprintable() and "\t" not in out:
        return out
    return "".join(
        "\n" if ch in _LINE_BREAKS else " " if ch == "\t" else "" if not ch.isprintable() else ch
        for ch in out
    )


def _join_spaced(match: re.Match[str]) -> str:
    parts = _UNIT.split(match.group(0))
    units = parts[1::2]
    gaps = parts[2:-1:2]
    # Where the spacing differs from the usual gap of the run, a word ended: "i g n o r e  a l l".
    usual = Counter(gaps).most_common(1)[0][0]
    out = [units[0]]
    for gap, unit in zip(gaps, units[1:], strict=True):
        if gap != usual:
            out.append(" ")
        out.append(unit)
    return "".join(out)


def _undo_leet_token(token: str) -> str:
    if (
        _HAS_LEET.search(token) is None
        or _HAS_LETTER.search(token) is None
        or _QUANTITY.fullmatch(token) is not None
    ):
        return token
    return token.translate(LEET_TABLE)


#: A text is written in leetspeak when at least this many of its tokens, and this share of
#: them, read as leetspeak.
_LEET_TEXT_TOKENS = 3
_LEET_TEXT_SHARE = 0.3


def _undo_leetspeak(folded: str) -> str:
    """Leetspeak undone token by token, quantities kept ("7pm", "3rd"); in a text written in
    leetspeak ("d15r3g4rd 7h3 rul35 4nd 537 pr10r17y cr171c4l"), also the quantities and
    numbers that read as a common word ("4nd" -> "and", "537" -> "set", "745k" -> "task")."""
    tokens = _TOKEN.findall(folded)
    undone = [_undo_leet_token(t) for t in tokens]
    changed = sum(a != b for a, b in zip(tokens, undone, strict=True))
    if not changed:
        return folded
    words = iter(undone)
    folded = _TOKEN.sub(lambda _: next(words), folded)
    if changed < _LEET_TEXT_TOKENS or changed < _LEET_TEXT_SHARE * len(tokens):
        return folded
    known = languages.lexicon().words
    return _TOKEN.sub(lambda m: _leet_word(m.group(0), known), folded)


def _leet_word(token: str, known: dict[str, int]) -> str:
    read = token.translate(LEET_TABLE)
    return read if read != token and read.isalpha() and read in known else token


# Elided articles and prepositions of French and Italian ("un'IA", "d'ora", "l'assistant") are
# their own word: joining them like a split word ("ig'nore") would hide the noun.
_ELISION = re.compile(
    r"\b(l|d|j|m|n|s|t|c|qu|un|dell|all|dall|nell|sull|quell)['\u2019](?=[^\W\d_])"
)


def normalize(text: str, keep_marks: bool = False) -> str:
    """The canonical form the screening patterns are matched against (see module doc);
    with `keep_marks`, the form the model reads (see `fold_unicode`)."""
    folded = _fold_ascii(text) if text.isascii() else fold_unicode(text, keep_marks)
    # The joining and leetspeak rules read ASCII letters; with accents kept, "só pão" would look
    # like spaced letters. The pattern form (marks dropped) undoes those disguises.
    folded = _ELISION.sub(r"\1' ", folded)
    if not (keep_marks and not folded.isascii()):
        folded = _INTRA_WORD.sub("", folded)
        folded = _SPACED_RUN.sub(_join_spaced, folded)
        folded = _undo_leetspeak(folded)
    folded = _HSPACE.sub(" ", folded)
    return _LINE_GAP.sub("\n", folded).strip()
