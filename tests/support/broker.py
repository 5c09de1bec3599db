"""Broker clean-up shared by every test that runs a stack on its own queue."""

from __future__ import annotations

import aio_pika

from taskmesh.queue.topology import JobTopology
from taskmesh.queue.webhooks import webhook_topology


async def delete_queues(url: str, queue: str) -> None:
    """Deletes every queue a stack on job queue ``queue`` declares: the job queue with its
    delay queues and DLQ, and the webhook queues derived from it. Quorum queues left behind
    pile up on the machine's broker run after run (each is a Raft cluster of its own)."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        await JobTopology(queue).delete(await connection.channel())
        await webhook_topology(queue).delete(await connection.channel())
