"""Writes the wordfreq-derived common words of the screening's non-Latin covered languages into
services/ai/domain/screen/data/common_words.json (`languages.py` reads them).

    .venv/bin/pip install -c constraints.txt -e '.[corpus]'
    .venv/bin/python scripts/build_common_words.py

Each list is wordfreq 3.1.1's 5,000 most frequent words of the language (its 'small' lists, CC
BY-SA 4.0), normalised as the screen normalises text (`normalise.normalize`: lower case, marks
dropped), cut into the words `languages.words` reads, duplicates dropped, most frequent first:
the recipe the Latin-script lists of the file were made with. The rest of the file is left as
it is. Rerunning it gives the same file byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.ai.domain.screen import languages  # noqa: E402
from services.ai.domain.screen.normalise import normalize  # noqa: E402

DATA = ROOT / "services" / "ai" / "domain" / "screen" / "data" / "common_words.json"
#: The covered languages (vocabulary.json) written in a script other than Latin and listed by
#: wordfreq, by the code the file uses -> wordfreq's code. ja, ko, zh and th write words without
#: spaces (or with particles joined), so a share of known words tells nothing there.
NON_LATIN = {
    "ru": "ru",
    "uk": "uk",
    "bg": "bg",
    "mk": "mk",
    "el": "el",
    "he": "he",
    "ar": "ar",
    "fa": "fa",
    "hi": "hi",
    "bn": "bn",
}
#: Words taken from each wordfreq list, before normalising and deduplicating.
TOP = 5000


def common_words(code: str) -> str:
    """The list of one language as the file stores it: words separated by single spaces."""
    import wordfreq  # the `corpus` extra: only this script needs it

    out: dict[str, None] = {}
    for word in wordfreq.top_n_list(code, TOP, wordlist="small"):
        for token in languages.words(normalize(word)):
            out.setdefault(token)
    return " ".join(out)


def main() -> None:
    data = json.loads(DATA.read_text("utf-8"))
    for ours, theirs in NON_LATIN.items():
        data["languages"][ours] = common_words(theirs)
    DATA.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", "utf-8")
    print(f"{DATA.relative_to(ROOT)}: {', '.join(NON_LATIN)} written")


if __name__ == "__main__":
    main()
