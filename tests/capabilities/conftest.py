from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import openai
import pytest

from llm_sim import SimOptions, SimServer
from taskmesh.capabilities.llm_client import LLMClient
from taskmesh.capabilities.parse_task import validate_input
from taskmesh.jobs.v1 import jobs_pb2

FROZEN_NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)

SimFactory = Callable[..., AbstractAsyncContextManager[tuple[SimServer, openai.AsyncOpenAI]]]


def _make_input(text: str, now: datetime = FROZEN_NOW) -> jobs_pb2.ParseTaskInput:
    msg = jobs_pb2.ParseTaskInput(natural_language=text)
    msg.reference_time.FromDatetime(now)
    return validate_input(msg)


@pytest.fixture
def make_input() -> Callable[..., jobs_pb2.ParseTaskInput]:
    """A validated input with the clock frozen at Monday 2024-01-15 12:00 UTC."""
    return _make_input


@pytest.fixture
def sim() -> SimFactory:
    """A simulator on an ephemeral port and a real client for it, the way the worker
    builds one (:class:`LLMClient`, its lean transport): no SDK retries, since the queue
    owns them."""

    @asynccontextmanager
    async def start(
        timeout: float = 10.0, **options: object
    ) -> AsyncIterator[tuple[SimServer, openai.AsyncOpenAI]]:
        async with SimServer(SimOptions(**options), port=0) as server:  # type: ignore[arg-type]
            client = LLMClient(
                api_key="sim", base_url=server.base_url, timeout_s=timeout, pool_size=16
            )
            async with client:
                yield server, client

    return start
