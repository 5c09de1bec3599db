"""Screen corpus rows (data/screening/) as written, no disguises added, and print what was
blocked and refused (counts; `--list` lists the misses and refusals too).

    .venv/bin/python scripts/screen_corpus.py --source v5
    .venv/bin/python scripts/screen_corpus.py --split report
    .venv/bin/python scripts/screen_corpus.py --source v7 --by lang --by kind --list
    .venv/bin/python scripts/screen_corpus.py --batch data/screening/v11

`--batch` reads a batch kept in a folder of its own (`attacks.jsonl`, `benign.jsonl`): rows
outside both splits, which the head never trained on (the held-out batches v10 and on, and the
public report sets under data/screening/external/, whose rows carry split "external-report").

`--source` picks rows written in one batch (a held-out set screened before any change made for
it); `--split` picks tune or report; `--by` adds a table of blocked attacks and refused honest
rows by `lang` or `kind` (attack rows from v7 on carry a kind too); `--paths` counts them by
the rule that blocked them ("rule": the cheap layers; "alone", "agree", "cue", "confirm": the
model, see `cascade.reason`); `--list` prints each missed attack and refused honest row,
which reads them: never on a held-out batch whose rows are to stay unread. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.ai.domain.screening import default_screener  # noqa: E402

DATA = ROOT / "data" / "screening"


def rows(name: str, split: str | None, source: str | None, folder: Path = DATA) -> list[dict]:
    out = [json.loads(line) for line in (folder / name).read_text("utf-8").splitlines() if line]
    return [
        r
        for r in out
        if (split is None or r["split"] == split) and (source is None or r.get("source") == source)
    ]


def _table(key: str, attacks: list, missed: list, honest: list, refused: list) -> None:
    def count(rs: list) -> Counter[str]:
        return Counter(r.get(key, "-").split("/")[0] for r in rs)

    total, lost, seen, bad = count(attacks), count(missed), count(honest), count(refused)
    for k in sorted(set(total) | set(seen)):
        cells = []
        if total[k]:
            cells.append(f"blocked {total[k] - lost[k]}/{total[k]}")
        if seen[k]:
            cells.append(f"refused {bad[k]}/{seen[k]}")
        print(f"  {k:22} " + ", ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["tune", "report"])
    parser.add_argument("--source", help='rows of one batch, e.g. "v5"')
    parser.add_argument("--batch", type=Path, help="a held-out batch's folder")
    parser.add_argument("--by", action="append", default=[], choices=["lang", "kind"])
    parser.add_argument(
        "--list",
        action="store_true",
        help="list each missed attack and refused honest row (reads them: not for held-out batches)",
    )
    parser.add_argument(
        "--paths",
        action="store_true",
        help="count blocked attacks and refused honest rows by the rule that blocked them",
    )
    args = parser.parse_args()
    folder = args.batch or DATA
    if not (folder / "attacks.jsonl").is_file() or not (folder / "benign.jsonl").is_file():
        # Before the screener loads: a mistyped folder is told in one line, at once.
        parser.error(f"{folder} holds no attacks.jsonl and benign.jsonl (a batch folder does)")
    screener = default_screener()
    attacks = rows("attacks.jsonl", args.split, args.source, folder)
    honest = rows("benign.jsonl", args.split, args.source, folder)
    # Each row screened once: `explain` names the rule that blocked it, "passed" when none did.
    how = {r["text"]: screener.explain(r["text"]) for r in attacks + honest}
    missed = [r for r in attacks if how[r["text"]] == "passed"]
    refused = [r for r in honest if how[r["text"]] != "passed"]
    blocked = len(attacks) - len(missed)
    print(
        f"attacks blocked {blocked}/{len(attacks)} ({100 * blocked / max(1, len(attacks)):.1f} %)"
    )
    print(f"honest refused {len(refused)}/{len(honest)}")
    by_family = Counter(r["family"] for r in attacks)
    missed_family = Counter(r["family"] for r in missed)
    for family, total in sorted(by_family.items()):
        print(f"  {family:22} {total - missed_family[family]}/{total}")
    for key in args.by:
        print(f"by {key}: blocked attacks, refused honest rows")
        _table(key, attacks, missed, honest, refused)
    if args.paths:
        # Counts only: printing which rule blocked each row would read a held-out batch.
        for label, group in (("blocked attacks", attacks), ("refused honest rows", refused)):
            paths = Counter(how[r["text"]] for r in group)
            paths.pop("passed", None)
            print(f"{label} by rule: " + ", ".join(f"{k} {n}" for k, n in paths.most_common()))
    if args.list:
        for r in missed:
            print(f"  missed  [{r['lang']}] {r['text']!r}")
        for r in refused:
            print(f"  refused [{r['lang']}] {r['text']!r}")


if __name__ == "__main__":
    main()
