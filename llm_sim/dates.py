"""Relative-date phrases the simulator understands: the capability's own resolver, so the
simulator answers by exactly the rules the handler checks the model against."""

from __future__ import annotations

from taskmesh.capabilities.parse_task.dates import MONTHS, VAGUE_TIME, WEEKDAYS, DueDate, resolve

__all__ = ["MONTHS", "VAGUE_TIME", "WEEKDAYS", "DueDate", "resolve"]
