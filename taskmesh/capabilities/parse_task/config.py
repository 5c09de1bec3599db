"""The vocabulary a parse-task request chooses from, and helpers to read it."""

from __future__ import annotations

from taskmesh.capabilities.task_vocabulary import DEFAULT_CATEGORIES as DEFAULT_CATEGORIES
from taskmesh.capabilities.task_vocabulary import DEFAULT_LEVELS as DEFAULT_LEVELS
from taskmesh.jobs.v1 import jobs_pb2

#: Scores live on one scale whatever the level names are, so clients can compare tasks.
SCORE_MIN = 0
SCORE_MAX = 10


def default_config() -> jobs_pb2.ParseTaskConfig:
    """A fresh message each time: callers merge it into their own and may mutate it."""
    return jobs_pb2.ParseTaskConfig(
        categories=list(DEFAULT_CATEGORIES),
        priority_levels=[
            jobs_pb2.PriorityLevel(name=name, min_score=low, max_score=high)
            for name, low, high in DEFAULT_LEVELS
        ],
    )


def is_empty(config: jobs_pb2.ParseTaskConfig) -> bool:
    return not config.categories and not config.priority_levels


def effective_config(config: jobs_pb2.ParseTaskConfig) -> jobs_pb2.ParseTaskConfig:
    """The config a job runs with: an empty one means the defaults."""
    return default_config() if is_empty(config) else config


def level_by_name(config: jobs_pb2.ParseTaskConfig, name: str) -> jobs_pb2.PriorityLevel | None:
    wanted = name.strip().casefold()
    for level in config.priority_levels:
        if level.name.casefold() == wanted:
            return level
    return None


def category_by_name(config: jobs_pb2.ParseTaskConfig, name: str) -> str | None:
    """The config's own spelling of a category, matched without regard to case."""
    wanted = name.strip().casefold()
    for category in config.categories:
        if category.casefold() == wanted:
            return category
    return None


def levels_by_score(config: jobs_pb2.ParseTaskConfig) -> list[jobs_pb2.PriorityLevel]:
    return sorted(config.priority_levels, key=lambda lvl: (lvl.min_score, lvl.max_score))


def describe_levels(config: jobs_pb2.ParseTaskConfig) -> str:
    return ", ".join(
        f"{lvl.name} {lvl.min_score}-{lvl.max_score}" for lvl in config.priority_levels
    )
