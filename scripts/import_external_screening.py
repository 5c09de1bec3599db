"""Turn the public corpora kept in data/screening/external/ (see its SOURCES.md) into batch
folders of the project's row format, beside them:

    .venv/bin/python scripts/import_external_screening.py

writes data/screening/external/{s-labs-test,yanismiraoui-report}/{attacks,benign}.jsonl, each
row {"text", "family": "external" (attacks), "lang", "kind", "source", "split": "external-report"}:
report sets, which no training step reads. Texts are stripped of surrounding whitespace and of
the quotes some CSV rows keep around a whole text; empty rows and repeats within a folder are
dropped. Deterministic: a rerun writes the same bytes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT / "data" / "screening" / "external"
#: Every row's split: a report set (the head's training reads split "tune" only).
SPLIT = "external-report"


def _clean(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text


def _rows(rows: list[tuple[str, int]], source: str, lang: str) -> dict[str, str]:
    """The batch folder's two files (name -> content) for labelled `rows` (text, 1 attack)."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {"attacks.jsonl": [], "benign.jsonl": []}
    for raw, label in rows:
        text = _clean(raw)
        if not text or text in seen:
            continue
        seen.add(text)
        family = {"family": "external"} if label else {}
        row = {"text": text, **family, "lang": lang, "kind": "external"}
        row |= {"source": source, "split": SPLIT}
        out["attacks.jsonl" if label else "benign.jsonl"].append(
            json.dumps(row, ensure_ascii=False)
        )
    return {name: "".join(line + "\n" for line in lines) for name, lines in out.items()}


def _labelled(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(r["text"], int(r["label"])) for r in csv.DictReader(f)]


def batches() -> dict[Path, str]:
    """Every file the import writes (path -> its whole UTF-8 text), from the vendored originals.
    Raises FileNotFoundError when an original is missing, KeyError when a CSV lacks its column."""
    slabs = EXTERNAL / "s-labs"
    with (EXTERNAL / "yanismiraoui" / "prompt_injections.csv").open(encoding="utf-8") as f:
        injections = [(r["prompt_injections"], 1) for r in csv.DictReader(f)]
    folders = {
        "s-labs-test": _rows(_labelled(slabs / "test.csv"), "s-labs", "en"),
        "yanismiraoui-report": _rows(injections, "yanismiraoui", "mixed"),
    }
    return {
        EXTERNAL / folder / name: content
        for folder, files in folders.items()
        for name, content in files.items()
    }


def main() -> None:
    for path, content in batches().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, "utf-8")
        print(f"{path.relative_to(ROOT)}: {content.count(chr(10))} rows")


if __name__ == "__main__":
    main()
