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
from taskmesh.timestamps import utc_from_seconds

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
    """The instant relative dates resolve against, aware in UTC to the whole second: the
    submission time when known, else now. Raises ``ValueError`` for a time outside
    years 1-9999 (as ``Timestamp.ToDatetime`` does)."""
    if task_input.HasField("reference_time"):
        return utc_from_seconds(task_input.reference_time.seconds)
    return datetime.now(UTC).replace(microsecond=0)


def render_core(config: jobs_pb2.ParseTaskConfig, now: datetime, version: str = "v1") -> str:
    """The core system prompt of ``version`` for ``config`` at ``now`` (an aware datetime).
    Rendered once per distinct (version, config, second) and shared: the jobs of a burst mostly
    share their reference second, and each job kept a copy of its prompt (2.7 KB) for as long
    as it ran (issue 12: worker memory with 1,000 jobs in flight; rendering cost ~45 µs)."""
    return _render_core(version, config.SerializeToString(deterministic=True), now)


#: Distinct prompts kept: a burst's seconds times the few configs clients send.
CORE_PROMPTS_KEPT = 64


@lru_cache(maxsize=CORE_PROMPTS_KEPT)
def _render_core(version: str, config: bytes, now: datetime) -> str:
    parsed = jobs_pb2.ParseTaskConfig.FromString(config)
    now = now.astimezone(UTC)
    levels = "\n".join(
        f"- {lvl.name}: scores {lvl.min_score} to {lvl.max_score}" for lvl in parsed.priority_levels
    )
    return load_prompt("core", version).substitute(
        current_time=format_utc(now),
        weekday=f"{now:%A}, {now:%B} {now.day}, {now.year}",
        categories="\n".join(f"- {name}" for name in parsed.categories),
        levels=levels,
    )


@cache
def render_subtasks(version: str = "v1") -> str:
    """The subtasks system prompt of ``version`` (one shared string per version)."""
    return load_prompt("subtasks", version).substitute()
