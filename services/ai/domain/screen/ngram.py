"""The second opinion: a logistic model over hashed character n-grams (1–5), numpy only.

It reads other features than the encoder: letters, not meanings, so it sees stems and spellings
the encoder smooths away ("JSON", "prompt", "ルール", "pravila", "sv0i") in any script, at about
0.05 ms for a sentence. The cascade uses it twice (see `cascade`): to send a sentence the
vocabulary gate would clear to the encoder, and beside the encoder's score where the two must
agree. Weights and thresholds (data/ngram.npz) come from scripts/train_screen_head.py, on the
tune split only.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .normalise import normalize

ORDERS = (1, 2, 3, 4, 5)
BITS = 17  # 131,072 buckets: few collisions for a corpus of a few thousand sentences
MAX_CHARS = 512  # a longer text is cut: the score is of its start, the cost bounded
_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(64 - BITS)


def features(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The hashed n-grams of `text` as (bucket indices, values): int64 and float32 arrays of
    one length, the values L2-normalised counts. `text` is read as the model reads it
    (`normalize` with marks kept, case folded), cut to MAX_CHARS and padded with a space so
    word starts and ends are n-grams of their own."""
    folded = " " + normalize(text, keep_marks=True).casefold()[:MAX_CHARS] + " "
    codes = np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    hashes = []
    rolling = codes
    for order in ORDERS:
        if order > 1:
            if rolling.size <= 1:
                break
            rolling = rolling[:-1] * _PRIME + codes[order - 1 :]
        # The order enters the hash so "a" and "aa…" of other orders land apart.
        hashes.append(((rolling + np.uint64(order)) * _MIX) >> _SHIFT)
    buckets, counts = np.unique(np.concatenate(hashes).astype(np.int64), return_counts=True)
    values = counts.astype(np.float32)
    values /= np.float32(math.sqrt(float((values * values).sum())))
    return buckets, values


@dataclass(frozen=True, slots=True)
class NgramModel:
    """P(attack) = sigmoid(weights[buckets] · values + bias) over `features`.

    `route` sends a sentence the vocabulary gate would clear to the encoder; `agree` blocks
    where the encoder's score also reaches the head's `ngram_agree_threshold` (both thresholds
    chosen by the training script above the highest out-of-fold honest score of the tune split,
    plus a margin; see `provenance`).
    """

    version: str
    weights: np.ndarray  # float32, shape (2**BITS,)
    bias: float
    route: float
    agree: float
    provenance: dict

    def score(self, text: str) -> float:
        """P(attack) for `text`, 0..1."""
        buckets, values = features(text)
        logit = float(self.weights[buckets] @ values) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    def to_bytes(self) -> bytes:
        """The model as an .npz archive (float16 weights, the rest as JSON)."""
        meta = {
            "version": self.version,
            "bias": self.bias,
            "route": self.route,
            "agree": self.agree,
            "provenance": self.provenance,
            "bits": BITS,
            "orders": list(ORDERS),
        }
        out = io.BytesIO()
        np.savez_compressed(out, weights=self.weights.astype(np.float16), meta=json.dumps(meta))
        return out.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> NgramModel:
        """Raises KeyError or ValueError when the archive is broken or of other features."""
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            weights = archive["weights"].astype(np.float32)
        if meta["bits"] != BITS or tuple(meta["orders"]) != ORDERS or weights.shape != (2**BITS,):
            raise ValueError("data/ngram.npz was trained on other features")
        return cls(
            version=meta["version"],
            weights=weights,
            bias=float(meta["bias"]),
            route=float(meta["route"]),
            agree=float(meta["agree"]),
            provenance=meta["provenance"],
        )


def load_ngram() -> NgramModel:
    """The shipped n-gram model; raises FileNotFoundError, KeyError or ValueError when it is
    missing or broken (the screen then fails closed, as for the head)."""
    raw = resources.files(__package__).joinpath("data/ngram.npz").read_bytes()
    return NgramModel.from_bytes(raw)
