"""The evaluation cases live with the eval tool (``taskmesh eval``); the tests use the same."""

from __future__ import annotations

from taskmesh.evals.cases import *  # noqa: F403
from taskmesh.evals.cases import ALL_CASES, CASES, FROZEN_NOW, MULTILINGUAL, EvalCase

__all__ = ["ALL_CASES", "CASES", "FROZEN_NOW", "MULTILINGUAL", "EvalCase"]
