"""Fixed token-budget windows aligned to the epoch (86,400 s → UTC midnight)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetPolicy:
    #: Window length, seconds.
    window_s: int
    #: Tokens a user may spend (used + reserved) per window.
    limit: int
    #: Tokens reserved per parse-task job before it is queued.
    estimate: int

    def window_start(self, now_s: float) -> int:
        return int(now_s // self.window_s) * self.window_s

    def window_end(self, window_start: int) -> int:
        return window_start + self.window_s

    def seconds_to_window_end(self, now_s: float) -> float:
        return self.window_end(self.window_start(now_s)) - now_s
