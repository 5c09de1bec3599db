"""Acks, several deliveries in one frame where that is safe (issue 12).

Each ack is a ``basic.ack`` frame the worker encodes and writes and RabbitMQ reads and applies;
under load the deliveries finishing together (a CompleteJobs batch returns them in one turn of
the event loop) are many. A frame with ``multiple=True`` acks every unacked delivery of its
channel up to its tag (AMQP 0-9-1 §1.8.3.13), so it may only cover tags that are all settled.

The rule kept here: on one channel, delivery tags are 1, 2, 3, … in delivery order (RabbitMQ's
numbering). :class:`Acks` remembers, per channel, the tag below which every delivery is settled
(acked or rejected through it) and the settled tags above it. The acks asked for in one loop
turn that extend that settled prefix go as one ``multiple`` ack at the highest of them; every
other goes alone. A delivery not settled yet, or settled behind :class:`Acks`' back, stops the
prefix, so it is never covered. A channel that is lost takes its unacked deliveries with it as
before: the broker redelivers them, and an ack that fails says so to every delivery it covered.

The frames of one turn on one aiormq channel (the ``multiple`` ack and the single ones) leave in
one write, as one payload (:func:`write_acks`): deliveries finish out of order, so most acks of a
turn are single, and each written alone cost a write system call, a drain and a pass of aiormq's
writer task. The broker reads the frames of a payload in order, as if written one by one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiormq
from aiormq.abc import ChannelFrame
from aiormq.exceptions import ChannelInvalidStateError
from pamqp import commands as spec

log = logging.getLogger(__name__)


class Delivery(Protocol):
    """What :class:`Acks` needs of a delivery (aio-pika's ``IncomingMessage``): its channel
    (raises when the channel is closed), its ``delivery_tag``, and ``ack``."""

    @property
    def channel(self) -> Any: ...

    @property
    def delivery_tag(self) -> int | None: ...

    async def ack(self, multiple: bool = False) -> None: ...


@dataclass
class _Channel:
    """Settled tags of one channel: every tag <= ``floor``, and those in ``above``."""

    floor: int = 0
    above: set[int] = field(default_factory=set)

    def settled(self, tag: int) -> None:
        if tag > self.floor:
            self.above.add(tag)
            self._advance()

    def _advance(self) -> None:
        above = self.above
        floor = self.floor
        while floor + 1 in above:
            floor += 1
            above.discard(floor)
        self.floor = floor


_Asked = tuple[Delivery, asyncio.Future[None]]


class Acks:
    """Acks deliveries for one consumer; :meth:`ack` returns once the frame that acks it was
    written, and raises what writing it raised (a closed channel's errors)."""

    def __init__(self) -> None:
        self._channels: dict[Any, _Channel] = {}
        self._asked: list[tuple[Any, int, Delivery, asyncio.Future[None]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def ack(self, message: Delivery) -> None:
        """Acks ``message``, with the others asked for in the same loop turn."""
        try:
            channel = message.channel
            tag = message.delivery_tag
        except Exception:  # noqa: BLE001 - a closed channel; the plain ack reports it
            channel = tag = None
        if channel is None or tag is None:
            await message.ack()
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._asked:
            # After the tasks already due in this turn, which ask for theirs meanwhile.
            loop.call_soon(self._flush)
        self._asked.append((channel, tag, message, waiter))
        await waiter

    def settled_otherwise(self, message: Delivery) -> None:
        """Records that ``message`` was settled without :meth:`ack` (a reject that was
        written), so the settled prefix of its channel can pass it."""
        try:
            channel = message.channel
            tag = message.delivery_tag
        except Exception:  # noqa: BLE001 - a closed channel: nothing to record
            return
        if channel is not None and tag is not None:
            self._channels.setdefault(channel, _Channel()).settled(tag)

    def _flush(self) -> None:
        asked, self._asked = self._asked, []
        if len(self._channels) > 1:
            # Channels replaced after a reconnect: their tags ended with them.
            for channel in [c for c in self._channels if getattr(c, "is_closed", False)]:
                del self._channels[channel]
        # A task of its own: a caller cancelled meanwhile must not stop the others' acks.
        task = asyncio.get_running_loop().create_task(self._send(asked))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, asked: list[tuple[Any, int, Delivery, asyncio.Future[None]]]) -> None:
        by_channel: dict[Any, dict[int, _Asked]] = {}
        for channel, tag, message, waiter in asked:
            by_channel.setdefault(channel, {})[tag] = (message, waiter)
        for channel, tags in by_channel.items():
            await self._send_on(channel, tags)

    async def _send_on(self, channel: Any, tags: dict[int, _Asked]) -> None:
        state = self._channels.setdefault(channel, _Channel())
        # The highest asked tag reachable from the settled prefix through tags that are all
        # settled (asked now, or settled earlier).
        top = 0
        tag = state.floor + 1
        while tag in tags or tag in state.above:
            if tag in tags:
                top = tag
            tag += 1
        covered = {t for t in tags if t <= top}
        if len(covered) < 2:
            covered = set()
        if isinstance(channel, aiormq.Channel) and len(tags) - len(covered) + bool(covered) > 1:
            frames = [(top, True)] if covered else []
            frames += [(t, False) for t in tags if t not in covered]
            if await self._write(
                channel, [w for _, w in tags.values()], write_acks(channel, frames)
            ):
                for t in tags:
                    state.settled(t)
            return
        if covered:
            message, _ = tags[top]
            await self._write(channel, [tags[t][1] for t in covered], message.ack(multiple=True))
            for t in covered:
                state.settled(t)
        for t, (message, waiter) in tags.items():
            if t in covered:
                continue
            if await self._write(channel, [waiter], message.ack()):
                state.settled(t)

    async def _write(self, channel: Any, waiters: list[asyncio.Future[None]], frame: Any) -> bool:
        try:
            await frame
        except BaseException as exc:
            self._channels.pop(channel, None)  # lost: its tags end with it
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return True


async def write_acks(channel: aiormq.Channel, acks: list[tuple[int, bool]]) -> None:
    """Writes the ``basic.ack`` frames ``acks`` ((delivery tag, multiple) each, in order) on
    ``channel`` as one payload, and waits until it is handed to the socket, as aiormq's own
    ``basic_ack`` waits for its one frame. Raises ChannelInvalidStateError on a closed channel;
    the channel's closing fails the wait (the future is the channel's)."""
    if channel.is_closed:
        raise ChannelInvalidStateError(f"{channel!r} closed")
    drained = channel.create_future()
    await channel.write_queue.put(
        ChannelFrame.marshall(
            channel_number=channel.number,
            frames=[spec.Basic.Ack(delivery_tag=tag, multiple=multiple) for tag, multiple in acks],
            drain_future=drained,
        )
    )
    await drained
