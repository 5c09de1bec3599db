"""Knobs of the simulator: latency and the share of calls that fail in each way."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields

from taskmesh.settings import fail

#: Field name → environment variable. The hang length and seed are for tests and
#: benchmarks that need them; the rest is the contract of SPEC §11.
ENV_VARS = {
    "latency_ms": "LLM_SIM_LATENCY_MS",
    "jitter_ms": "LLM_SIM_JITTER_MS",
    "rate_429": "LLM_SIM_RATE_429",
    "rate_500": "LLM_SIM_RATE_500",
    "rate_timeout": "LLM_SIM_RATE_TIMEOUT",
    "rate_malformed": "LLM_SIM_RATE_MALFORMED",
    "timeout_hang_s": "LLM_SIM_TIMEOUT_HANG_S",
    "seed": "LLM_SIM_SEED",
}
RATES = ("rate_429", "rate_500", "rate_timeout", "rate_malformed")
KINDS = frozenset({"core", "subtasks", "other"})


class OptionError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class SimOptions:
    latency_ms: float = 0
    jitter_ms: float = 0
    rate_429: float = 0
    rate_500: float = 0
    rate_timeout: float = 0
    rate_malformed: float = 0
    timeout_hang_s: float = 120
    seed: int | None = None
    #: Every call within this many seconds of the first one is answered 429 with
    #: Retry-After = the seconds left of that window (a provider's rate-limit window).
    rate_limit_window_s: float = 0
    #: Start with the gate closed: every call waits until ``POST /sim/gate {"open": true}``.
    hold: bool = False
    #: Prompt kinds ("core", "subtasks", "other") faults apply to; empty means every call.
    fault_kinds: AbstractSet[str] = frozenset()
    # --- behaviours of real servers (issue 14), for tests of each fallback --------------------
    #: Seconds a 429 asks the client to wait (``Retry-After`` and ``retry-after-ms``).
    retry_after_s: float = 1
    #: Answer ``response_format: json_schema`` with HTTP 500, as llama-cpp-python's server does.
    refuse_json_schema: bool = False
    #: Answer any request with a system message with HTTP 400 (chat templates without a
    #: system role, e.g. Gemma's, in llama.cpp).
    no_system_role: bool = False
    #: Leave ``usage`` out of answers (some proxies and older servers).
    omit_usage: bool = False
    #: A schema with a list of types anywhere (``"type": ["string", "null"]``) is not turned
    #: into a grammar and the model answers unconstrained JSON without the schema's fields:
    #: llama-cpp-python 0.2.60's converter rejects type lists and silently falls back to "any
    #: JSON object" (seen in the conformance run, where SmolLM2 then left out title,
    #: category and priority).
    grammar_without_type_lists: bool = False
    #: A model that never stops (issue 14.2): without ``max_tokens`` the call runs until
    #: ``timeout_hang_s``; with it, generation stops at the bound (``finish_reason: length``).
    ramble: bool = False
    #: Answer every call with HTTP 400 and this message (context too long, unknown model).
    reject_400: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fault_kinds", frozenset(self.fault_kinds))
        if not self.fault_kinds <= KINDS:
            raise OptionError("fault_kinds", f"must be among {sorted(KINDS)}")
        for name in ("latency_ms", "jitter_ms", "timeout_hang_s", "retry_after_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise OptionError(name, f"must be a number >= 0 (got {value!r})")
        for name in RATES:
            value = getattr(self, name)
            if not math.isfinite(value) or not 0 <= value <= 1:
                raise OptionError(name, f"must be a fraction from 0 to 1 (got {value!r})")
        if sum(getattr(self, name) for name in RATES) > 1 + 1e-9:
            raise OptionError("rate_429", "the fault rates must add up to at most 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimOptions:
        """Options from ``LLM_SIM_*``; a bad value exits with one line naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int | None] = {}
        for item in fields(cls):
            if item.name not in ENV_VARS:
                continue
            variable = ENV_VARS[item.name]
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[item.name] = int(raw) if item.name == "seed" else float(raw)
            except ValueError:
                kind = "an integer" if item.name == "seed" else "a number"
                fail(variable, f"must be {kind} (got {raw!r})")
        try:
            return cls(**values)  # type: ignore[arg-type]  # each value parsed for its own field above
        except OptionError as exc:
            fail(ENV_VARS[exc.name], str(exc))
            raise  # unreachable: fail() exits
