"""Versioned prompt files (``prompts/<kind>.<version>.md``) and their rendering.

Only the system prompt is rendered; the user's sentence always travels alone in the user
message, so nothing the user writes can pose as part of the instructions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources
from string import Template
from typing import Literal

from taskmesh.jobs.v1 import jobs_pb2

PromptKind = Literal["core", "subtasks"]

_VERSION = re.compile(r"^v[0-9]+$")


class UnknownPromptVersion(ValueError):
    pass


@cache
def load_prompt(kind: PromptKind, version: str) -> Template:
    if not _VERSION.match(version):
        raise UnknownPromptVersion(f"prompt version must look like v1, got {version!r}")
    path = resources.files(__package__).joinpath("prompts").joinpath(f"{kind}.{version}.md")
    if not path.is_file():
        raise UnknownPromptVersion(f"no {kind} prompt of version {version!r}")
    return Template(path.read_text(encoding="utf-8"))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference_time(task_input: jobs_pb2.ParseTaskInput) -> datetime:
    """The instant relative dates resolve against: the submission time when known."""
    if task_input.HasField("reference_time"):
        return task_input.reference_time.ToDatetime(tzinfo=UTC).replace(microsecond=0)
    return datetime.now(UTC).replace(microsecond=0)


def render_core(config: jobs_pb2.ParseTaskConfig, now: datetime, version: str = "v1") -> str:
    """The core system prompt of ``version`` for ``config`` at ``now``. The config's lists and
    the clock's texts are each rendered once per distinct value (a job's prompt was rendered
    twice per job, a visible share of the worker's CPU, issue 12)."""
    categories, levels = _vocabulary(config.SerializeToString(deterministic=True))
    current_time, weekday = _clock(now)
    return load_prompt("core", version).substitute(
        current_time=current_time, weekday=weekday, categories=categories, levels=levels
    )


@lru_cache(maxsize=64)
def _vocabulary(config: bytes) -> tuple[str, str]:
    """The categories and the levels of a serialised config, as the prompt lists them."""
    parsed = jobs_pb2.ParseTaskConfig.FromString(config)
    categories = "\n".join(f"- {name}" for name in parsed.categories)
    levels = "\n".join(
        f"- {lvl.name}: scores {lvl.min_score} to {lvl.max_score}" for lvl in parsed.priority_levels
    )
    return categories, levels


@lru_cache(maxsize=16)
def _clock(now: datetime) -> tuple[str, str]:
    """``now`` as the prompt states it: the UTC time and the weekday with the date. Jobs of a
    burst share their second (reference times are whole seconds)."""
    now = now.astimezone(UTC)
    return format_utc(now), f"{now:%A}, {now:%B} {now.day}, {now.year}"


def render_subtasks(version: str = "v1") -> str:
    return load_prompt("subtasks", version).substitute()
