"""Acks several in one frame (services/worker/acks.py): a ``multiple`` ack never covers a
delivery that was not settled, whatever the order and the turns deliveries settle in, and on
the real broker a lost channel still redelivers exactly the unsettled ones."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelInvalidStateError
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker import acks as acks_module
from services.worker.acks import Acks, write_acks


class Broker:
    """One channel's unacked deliveries as RabbitMQ keeps them, applying ack frames as
    AMQP 0-9-1 defines them; it fails the test on an ack of an unsettled delivery, or of
    a tag that is no longer unacked (RabbitMQ closes the channel for that)."""

    def __init__(self, count: int) -> None:
        self.unacked = set(range(1, count + 1))
        self.settled: set[int] = set()
        self.frames: list[tuple[int, bool]] = []
        self.dead = False

    def ack(self, tag: int, multiple: bool) -> None:
        if self.dead:
            raise ChannelInvalidStateError("channel closed")
        self.frames.append((tag, multiple))
        covered = {t for t in self.unacked if t <= tag} if multiple else {tag}
        assert tag in self.unacked, f"ack of tag {tag}, which is not unacked"
        assert covered <= self.settled, f"acked unsettled {sorted(covered - self.settled)}"
        self.unacked -= covered


class Message:
    def __init__(self, broker: Broker, tag: int) -> None:
        self.broker = broker
        self.delivery_tag = tag

    @property
    def channel(self) -> Any:
        if self.broker.dead:
            raise ChannelInvalidStateError("channel closed")
        return self.broker

    async def ack(self, multiple: bool = False) -> None:
        await asyncio.sleep(0)  # a frame written is a suspension point in aiormq too
        self.broker.ack(self.delivery_tag, multiple)


async def settle(acks: Acks, broker: Broker, turns: list[list[int]], rejected: set[int]) -> None:
    """Settles the tags of each turn together (acks, or a written reject for those in
    ``rejected``), turn after turn."""
    for turn in turns:
        asked = []
        for tag in turn:
            broker.settled.add(tag)
            if tag in rejected:
                broker.unacked.discard(tag)  # the reject frame, written before this returns
                acks.settled_otherwise(Message(broker, tag))
            else:
                asked.append(acks.ack(Message(broker, tag)))
        await asyncio.gather(*asked)


async def test_deliveries_settled_together_from_the_lowest_go_as_one_frame() -> None:
    broker = Broker(6)
    await settle(Acks(), broker, [[3, 1, 2]], set())
    assert broker.frames == [(3, True)]
    assert broker.unacked == {4, 5, 6}


async def test_a_delivery_still_running_below_keeps_the_others_single() -> None:
    broker = Broker(6)
    acks = Acks()
    await settle(acks, broker, [[2, 3, 4]], set())
    assert sorted(broker.frames) == [(2, False), (3, False), (4, False)]
    await settle(acks, broker, [[1, 5]], set())
    # 1 completes the prefix: one frame up to 5 (2-4 are acked already, 6 still runs).
    assert broker.frames[-1] == (5, True) and len(broker.frames) == 4
    assert broker.unacked == {6}


async def test_a_rejected_delivery_does_not_stop_the_prefix() -> None:
    broker = Broker(4)
    await settle(Acks(), broker, [[2], [1, 3]], rejected={2})
    assert broker.frames == [(3, True)] and broker.unacked == {4}


async def test_a_lost_channel_fails_every_ack_its_frame_carried() -> None:
    broker = Broker(3)
    acks = Acks()
    broker.dead = True
    results = await asyncio.gather(
        *(acks.ack(Message(broker, t)) for t in (1, 2)), return_exceptions=True
    )
    assert all(isinstance(r, ChannelInvalidStateError) for r in results)
    assert broker.unacked == {1, 2, 3}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_frame_ever_covers_an_unsettled_delivery(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 30), label="deliveries")
    order = data.draw(st.permutations(range(1, count + 1)), label="settle order")
    settled = data.draw(st.integers(0, count), label="settled")
    order = order[:settled]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(settled - 1, 1))), label="turn cuts"))
    turns = [order[a:b] for a, b in zip([0, *cuts], [*cuts, settled], strict=True) if a < b]
    rejected = data.draw(st.sets(st.sampled_from(order)) if order else st.just(set()))
    broker = Broker(count)
    asyncio.run(settle(Acks(), broker, turns, set(rejected)))
    # Every settled delivery is acked (or rejected), and nothing else is.
    assert broker.unacked == set(range(1, count + 1)) - set(order)


async def test_on_the_broker_a_lost_channel_redelivers_exactly_the_unsettled(
    rabbitmq_url: str, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = await aio_pika.connect(rabbitmq_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue_name, auto_delete=False)
        try:
            for i in range(1, 7):
                await channel.default_exchange.publish(
                    aio_pika.Message(str(i).encode()), routing_key=queue_name
                )
            consumer = await connection.channel()
            await consumer.set_qos(prefetch_count=6)
            inbox = await consumer.get_queue(queue_name)
            got: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
            await inbox.consume(got.put)
            messages = {}
            for _ in range(6):
                message = await got.get()
                messages[int(message.body)] = message
            # Every write of ack frames, each a list of (tag, multiple): aiormq's basic_ack
            # writes one frame, acks.write_acks several in one payload.
            writes: list[list[tuple[int, bool]]] = []
            raw = messages[1].channel
            basic_ack = raw.basic_ack

            async def counted(delivery_tag: int, multiple: bool = False, **kw: Any) -> None:
                writes.append([(delivery_tag, multiple)])
                await basic_ack(delivery_tag=delivery_tag, multiple=multiple, **kw)

            async def counted_many(channel: Any, frames: list[tuple[int, bool]]) -> None:
                writes.append(list(frames))
                await write_acks(channel, frames)

            raw.basic_ack = counted  # type: ignore[method-assign]  # counts real frames
            monkeypatch.setattr(acks_module, "write_acks", counted_many)
            acks = Acks()
            await asyncio.gather(*(acks.ack(messages[i]) for i in (2, 3, 4)))
            await asyncio.gather(*(acks.ack(messages[i]) for i in (1, 5)))
            by_tag = {m.delivery_tag: int(m.body) for m in messages.values()}
            # The three single acks of the first turn in one write; then 1 completes the
            # prefix: one multiple ack up to 5.
            assert [[(by_tag[t], multiple) for t, multiple in w] for w in writes] == [
                [(2, False), (3, False), (4, False)],
                [(5, True)],
            ]
            await consumer.close()  # 6 was never settled

            again = await channel.get_queue(queue_name)
            redelivered = []
            while (message := await again.get(no_ack=True, fail=False)) is not None:
                redelivered.append(int(message.body))
            assert redelivered == [6]
        finally:
            await channel.queue_delete(queue_name)
