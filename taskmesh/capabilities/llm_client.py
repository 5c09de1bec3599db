"""The OpenAI-compatible client every process that runs a capability uses."""

from __future__ import annotations

import openai

from taskmesh.settings import Settings


def make_llm_client(settings: Settings) -> openai.AsyncOpenAI:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return openai.AsyncOpenAI(
        # Local servers (the simulator, vLLM, Ollama) need no key, but the SDK
        # insists on one.
        api_key=key or "no-key",
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_s,
        # aiohttp transport: about half the client CPU of the default httpx one
        # per call (the largest single cost of a job), same SDK behaviour.
        http_client=openai.DefaultAioHttpClient(timeout=settings.openai_timeout_s),
        # The queue owns retries (backoff through retry queues); SDK retries
        # would multiply attempts and hold a worker slot while sleeping.
        max_retries=0,
    )
