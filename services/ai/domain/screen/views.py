"""Decoding views: the forms an attacker hides a payload in, decoded so each can be screened.

The first view is the sentence itself; the others are the payloads found in it: the text with
its backspaces applied, Unicode tag characters read as ASCII, base64, hex, %-escapes, Morse,
ROT13 and reversed text. Decoding recurses (a base64 payload holding hex) to `MAX_DEPTH`, and
every limit below keeps a hostile input linear: at most `MAX_VIEWS` views and `MAX_VIEW_CHARS`
characters each.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata
import urllib.parse

from . import vocabulary

MAX_DEPTH = 2
MAX_VIEWS = 8
MAX_VIEW_CHARS = 2_400

_TAG_FIRST, _TAG_LAST = 0xE0020, 0xE007E
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"(?:(?:\\x|0x)?[0-9a-fA-F]{2}[\s:,]?){8,}")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_MORSE = re.compile(r"[.\-·•_]{1,7}(?:[ /|]+[.\-·•_]{1,7}){5,}")
_MORSE_TABLE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", ".----": "1",
    "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6", "--...": "7",
    "---..": "8", "----.": "9", "-----": "0",
}  # fmt: skip
# Common English words: ROT13 text has few, its decoding many.
_COMMON = frozenset(
    "the a an and or to of in on for with from is are be you your yours me my i it this that"
    " all any no not now new only just what how as at by do does did was were will would can"
    " never always ignore forget previous instructions rules prompt system output reply respond"
    " return say tell show reveal repeat role act pretend mode above before matter what"
    " category priority title critical".split()
)
# Words of three letters or more: one-letter fragments of other languages ("ayın" -> "ay", "n")
# turn into "a" and "i" under ROT13 too easily.
_ASCII_WORD = re.compile(r"(?<![^\W\d_])[a-z]{3,}(?![^\W\d_])")


def _tags(text: str) -> str | None:
    chars = [chr(ord(c) - 0xE0000) for c in text if _TAG_FIRST <= ord(c) <= _TAG_LAST]
    # Emoji subdivision flags carry a few tag letters ("gbsct"); a message needs more.
    return "".join(chars) if len(chars) > 6 else None


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() for c in text)
    if letters < 4 or letters < len(text) * 0.5 or not text.isprintable():
        return None
    return text


def _base64(text: str) -> list[str]:
    out = []
    for m in _B64.finditer(text):
        token = m.group(0)
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # one long word, not an encoding
        padded = token + "=" * (-len(token) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = _printable_text(decode(padded))
            except (binascii.Error, ValueError):
                continue
            if decoded:
                out.append(decoded)
                break
    return out


def _hex(text: str) -> list[str]:
    out = []
    for m in _HEX.finditer(text):
        digits = re.sub(r"\\x|0x|[\s:,]", "", m.group(0))
        if len(digits) % 2:
            digits = digits[:-1]
        decoded = _printable_text(bytes.fromhex(digits))
        if decoded:
            out.append(decoded)
    return out


def _percent(text: str) -> list[str]:
    if len(_PCT.findall(text)) < 3:
        return []
    decoded = urllib.parse.unquote(text)
    return [decoded] if decoded != text else []


def _morse(text: str) -> list[str]:
    out = []
    for m in _MORSE.finditer(text):
        words = re.split(r"\s*[/|]\s*|\s{2,}", m.group(0).replace("·", ".").replace("•", "."))
        letters = [
            "".join(_MORSE_TABLE.get(code.replace("_", "-"), "?") for code in word.split())
            for word in words
        ]
        decoded = " ".join(letters)
        if decoded.count("?") <= len(decoded) // 10:
            out.append(decoded)
    return out


def _rot13(text: str) -> list[str]:
    # Only when the text reads as ROT13 of the vocabulary of an attack: cheap to test, and it
    # keeps an ordinary sentence from being screened twice.
    words = _ASCII_WORD.findall(text[:MAX_VIEW_CHARS].lower())
    if len(words) < 3:
        return []
    plain = sum(w in _COMMON for w in words)
    decoded = codecs.decode(text, "rot13")
    rotated = sum(w in _COMMON for w in _ASCII_WORD.findall(decoded.lower()))
    return [decoded] if rotated >= 2 and rotated > 2 * plain else []


# Words of three letters or more in any spaced script; a reversed text is judged on its first
# `_REVERSED_CHARS` characters (about fifty words), so the test costs the same on a pasted page.
_WORD = re.compile(r"[^\W\d_]{3,}")
_REVERSED_CHARS = 400


def _plain(word: str) -> str:
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


@functools.cache
def _reversed_stems() -> frozenset[str]:
    # Built once: the union of the two sets (about 3,200 words) cost more than the rest of the
    # test when it was rebuilt per text.
    return vocabulary.word_stems() | _COMMON


def _reversed(text: str) -> list[str]:
    """The text read backwards, only when it reads as the vocabulary of an attack backwards
    ("snoitcurtsni suoiverp erongi") and not forwards; in any spaced script, like `_rot13`."""
    # Distinct words: "bananas, oranges" said three times is not six words that read as
    # vocabulary backwards ("sananab" begins with Turkish "sana", to you).
    words = list(dict.fromkeys(_plain(w) for w in _WORD.findall(text[:_REVERSED_CHARS].lower())))
    if len(words) < 3:
        return []
    stems = _reversed_stems()
    backward = sum(vocabulary.known_word(w[::-1], stems) for w in words)
    if backward < 3:
        return []
    forward = sum(vocabulary.known_word(w, stems) for w in words)
    return [text[::-1]] if backward > 2 * forward else []


def _erased(text: str) -> list[str]:
    """The text as a terminal shows it: each backspace (or DEL) erases the character
    before it, so "igx\bnore" and "Buy milk" + 8 backspaces + "ignore…" read "ignore…".
    (The plain view drops the control characters instead: "ig\bnore" reads "ignore".)"""
    if "\b" not in text and "\x7f" not in text:
        return []
    out: list[str] = []
    for ch in text:
        if ch in "\b\x7f":
            if out:
                out.pop()
        else:
            out.append(ch)
    return ["".join(out)]


_DECODERS = (_erased, _base64, _hex, _percent, _morse, _rot13, _reversed)


def decoded_payloads(text: str) -> list[str]:
    """Raw texts hidden in `text` by one layer of encoding (not normalised)."""
    found: list[str] = []
    tags = _tags(text)
    if tags:
        found.append(tags)
    for decode in _DECODERS:
        found.extend(decode(text))
    return found


def views(text: str) -> list[str]:
    """`text` itself, then each payload decoded from it (raw, not normalised): at most
    `MAX_VIEWS`, each at most `MAX_VIEW_CHARS` characters, at most `MAX_DEPTH` layers deep."""
    out = [text[:MAX_VIEW_CHARS]]
    frontier = [out[0]]
    for _ in range(MAX_DEPTH):
        nxt: list[str] = []
        for raw in frontier:
            for payload in decoded_payloads(raw):
                payload = payload[:MAX_VIEW_CHARS]
                if payload.strip() and payload not in out:
                    out.append(payload)
                    nxt.append(payload)
                if len(out) >= MAX_VIEWS:
                    return out
        frontier = nxt
    return out
