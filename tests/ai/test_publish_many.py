"""JobPublisher.publish_many against the real RabbitMQ: a batch in one write carries what
one publish carries, each job confirmed (or refused) on its own, nothing left behind."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import pytest
from aiormq.channel import Channel

from services.ai.messaging.publisher import JobPublisher, job_properties
from taskmesh import errors
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import job_message
from taskmesh.queue.topology import JobTopology

pytestmark = pytest.mark.integration


def job(job_id: str, request_id: str = "") -> jobs_pb2.CapabilityJob:
    return jobs_pb2.CapabilityJob(
        job_id=job_id,
        user_id="user-1",
        capability=jobs_pb2.CAPABILITY_PARSE_TASK,
        parse_task=jobs_pb2.ParseTaskInput(natural_language=f"Pay invoice {job_id}"),
        request_id=request_id,
    )


@pytest.mark.parametrize("request_id", ["req-12345678", ""])
def test_batch_properties_are_the_unary_publishs(request_id: str) -> None:
    one = job("job-1", request_id)
    expected = job_message(one).properties
    now = datetime.now(UTC)
    expected.timestamp = now
    assert job_properties(one, now) == expected


@pytest.fixture
async def publisher(rabbitmq_url, queue_name):
    topology = JobTopology(queue_name)
    publisher = JobPublisher(rabbitmq_url, topology)
    await publisher.connect()
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        yield publisher, connection
    finally:
        async with connection:
            await topology.delete(await connection.channel())
        await publisher.close()


async def underlay(publisher: JobPublisher) -> Channel:
    assert publisher._channel is not None
    channel = await publisher._channel.get_underlay_channel()
    assert isinstance(channel, Channel)
    return channel


@pytest.mark.timeout(30)
async def test_a_batch_is_confirmed_and_queued_with_each_jobs_properties(publisher) -> None:
    publisher, connection = publisher
    jobs = [job(f"job-{i}", f"req-{i:08d}") for i in range(50)]
    assert await publisher.publish_many(jobs, timeout=10) == [None] * 50
    channel = await underlay(publisher)
    # Every confirm settled and forgotten: nothing of the batch stays on the channel.
    assert not channel.confirmations and not channel.message_id_delivery_tag
    queue = await (await connection.channel()).get_queue(publisher.topology.queue)
    seen = []
    while (message := await queue.get(fail=False, timeout=5)) is not None:
        assert message.message_id == jobs_pb2.CapabilityJob.FromString(message.body).job_id
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers["x-taskmesh-attempts"] == message.headers["x-taskmesh-waits"] == 0
        seen.append((message.message_id, message.correlation_id))
        await message.ack()
    assert seen == [(j.job_id, j.request_id) for j in jobs]  # in order, each with its own ids


@pytest.mark.timeout(30)
async def test_unroutable_jobs_are_each_unavailable_and_the_channel_stays_usable(
    publisher,
) -> None:
    publisher, connection = publisher
    await (await connection.channel()).queue_delete(publisher.topology.queue)
    outcomes = await publisher.publish_many([job("a"), job("b"), job("c")], timeout=10)
    assert all(isinstance(o, errors.Unavailable) for o in outcomes) and len(outcomes) == 3
    channel = await underlay(publisher)
    assert not channel.confirmations and not channel.message_id_delivery_tag
    await publisher.topology.declare(await connection.channel())
    assert await publisher.publish_many([job("d"), job("e")], timeout=10) == [None, None]
