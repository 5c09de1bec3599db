"""The peer's broker and task, configured from the environment so that
``taskiq worker bench_peer.app:broker`` and the producer see the same queues.

Environment (set by ``bench_peer.run``):
- ``RABBITMQ_URL``: the broker;
- ``PEER_QUEUE``: name of the exchange and queue of this run (dead letters go to
  ``<queue>.dead_letter``), so runs never share queues with each other or with
  taskmesh;
- ``PEER_CONCURRENCY``: prefetch per worker process (match ``--max-async-tasks``);
- ``PEER_LLM_URL``: OpenAI-compatible base URL (the taskmesh simulator);
- ``PEER_LLM``: ``openai`` (the SDK with its aiohttp transport, as a user following
  the SDK's documentation would write it) or ``aiohttp`` (one plain POST);
- ``PEER_CALLBACK_URL``: where each result is POSTed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp
import openai
from taskiq import TaskiqEvents, TaskiqState
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue

QUEUE = os.environ.get("PEER_QUEUE", "bench-peer")
CONCURRENCY = int(os.environ.get("PEER_CONCURRENCY", "256"))
LLM_URL = os.environ.get("PEER_LLM_URL", "http://127.0.0.1:8089/v1")
LLM = os.environ.get("PEER_LLM", "openai")
CALLBACK_URL = os.environ.get("PEER_CALLBACK_URL", "http://127.0.0.1:8090/callback")
#: Seconds; the same order as taskmesh's OPENAI_TIMEOUT_S.
TIMEOUT_S = 30.0

SYSTEM = (
    "Extract one task from the user's sentence. Answer with a JSON object with the keys "
    "title, dueDate, category and priority."
)

broker = AioPikaBroker(
    os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    qos=CONCURRENCY,
    exchange=Exchange(name=QUEUE),
    task_queues=[Queue(name=QUEUE)],
    dead_letter_queue=Queue(name=f"{QUEUE}.dead_letter"),
)

_clients: dict[str, Any] = {}


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _open(state: TaskiqState) -> None:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    _clients["http"] = aiohttp.ClientSession(timeout=timeout)
    if LLM == "openai":
        _clients["llm"] = openai.AsyncOpenAI(
            base_url=LLM_URL,
            api_key="bench",
            http_client=openai.DefaultAioHttpClient(timeout=TIMEOUT_S),
        )


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _close(state: TaskiqState) -> None:
    if "llm" in _clients:
        await _clients["llm"].close()
    await _clients["http"].close()


async def _complete(text: str) -> str:
    """One chat-completions call; returns the answer's text."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    if LLM == "openai":
        response = await _clients["llm"].chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            response_format={"type": "json_object"},
            temperature=0,
        )
        return response.choices[0].message.content or ""
    body = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "response_format": {"type": "json_object"},
        "temperature": 0,
    }
    async with _clients["http"].post(
        f"{LLM_URL}/chat/completions", json=body, headers={"Authorization": "Bearer bench"}
    ) as response:
        response.raise_for_status()
        return (await response.json())["choices"][0]["message"]["content"] or ""


@broker.task(task_name="bench_peer.run_job")
async def run_job(job_id: str, text: str) -> None:
    """One job: the LLM call, then the result POSTed to the callback URL."""
    content = await _complete(text)
    try:
        result: Any = json.loads(content)
    except ValueError:
        result = content
    async with _clients["http"].post(
        CALLBACK_URL, json={"jobId": job_id, "status": "succeeded", "result": result}
    ) as response:
        response.raise_for_status()
