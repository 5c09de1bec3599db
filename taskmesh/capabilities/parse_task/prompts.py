"""Versioned prompt files (``prompts/<kind>.<version>.md``) and their rendering.

Only the system prompt is rendered; the user's sentence always travels alone in the user
message, so nothing the user writes can pose as part of the instructions."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
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
    now = now.astimezone(UTC)
    levels = "\n".join(
        f"- {lvl.name}: scores {lvl.min_score} to {lvl.max_score}" for lvl in config.priority_levels
    )
    return load_prompt("core", version).substitute(
        current_time=format_utc(now),
        weekday=f"{now:%A}, {now:%B} {now.day}, {now.year}",
        categories="\n".join(f"- {name}" for name in config.categories),
        levels=levels,
    )


def render_subtasks(version: str = "v1") -> str:
    return load_prompt("subtasks", version).substitute()
