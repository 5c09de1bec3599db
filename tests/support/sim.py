"""The LLM simulator's gate, seen from a test: close it and calls wait there
(a state the test holds, not a window it races); open it and they answer."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.stack import Stack


def _url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['LLM_SIM_PORT']}/sim/gate"


def sim_gate(stack: Stack, *, open: bool) -> dict[str, Any]:
    """Opens or closes the gate of ``stack``'s simulator; returns its state
    (``held`` = calls waiting at the gate, ``in_flight`` = calls not answered)."""
    response = httpx.post(_url(stack.env), json={"open": open}, timeout=10)
    response.raise_for_status()
    return response.json()


def sim_state(stack: Stack) -> dict[str, Any]:
    response = httpx.get(_url(stack.env), timeout=10)
    response.raise_for_status()
    return response.json()
