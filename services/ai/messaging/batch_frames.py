"""Several confirmed publishes on one aiormq channel in ONE socket write.

``aiormq.Channel.basic_publish`` (aiormq 7.2.4, pinned in constraints.txt) puts each
message's frames on the connection's write queue on its own, and its writer task writes
each one to the socket on its own: one ``send`` per message, each crossing the kernel's
TCP path (the AI service's largest CPU item per job under a burst, with aiormq's per-call
lock, timeout and drain wait beside it). :func:`publish_frames` does for a batch what
``basic_publish`` does for one message, with the channel's own bookkeeping, so the
channel's reader settles the confirms (acks, nacks, returns of mandatory messages) as it
does for ``basic_publish``:

- under the channel's lock, each message takes the next delivery tag, its confirmation
  future goes into ``channel.confirmations`` and its message id into
  ``channel.message_id_delivery_tag`` (how a Basic.Return finds its publish);
- every message's Basic.Publish, content header and body frames go on the write queue
  as one ``ChannelFrame``, and the call waits until the writer has handed it to the
  socket (``basic_publish``'s ``wait=True``);
- a message id is forgotten once its confirmation is settled, as ``basic_publish`` does.

What a caller awaits is each message's confirmation future: the Basic.Ack frame, or
DeliveryError (nack), PublishError (returned: unroutable) or the channel's close error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiormq.abc import ChannelFrame, ConfirmationFrameType
from aiormq.channel import Channel
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

Message = tuple[bytes, spec.Basic.Properties]


def fits(channel: Channel, body: bytes) -> bool:
    """Whether ``body`` travels in one body frame (the channel's frame_max), the only
    case :func:`publish_frames` takes; a larger one goes through ``basic_publish``."""
    return 0 < len(body) < channel.max_content_size


async def publish_frames(
    channel: Channel,
    routing_key: str,
    messages: Sequence[Message],
    *,
    exchange: str = "",
    mandatory: bool = True,
) -> list[asyncio.Future[ConfirmationFrameType]]:
    """Publishes ``messages`` (body, properties with a message id; every body
    :func:`fits`) on ``channel``, which has publisher confirms on, in one write; returns
    each message's confirmation future, in order. Raises what the channel's lock raises
    when the channel is closed (ChannelInvalidStateError), nothing published then; a
    cancellation before the write rolls every message back."""
    ids = [properties.message_id for _, properties in messages]
    if not all(ids):
        raise ValueError("every message needs a message id (a Basic.Return names it)")
    publish = spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory)
    frames: list[spec.Basic.Publish | ContentHeader | ContentBody] = []
    confirmations: list[asyncio.Future[ConfirmationFrameType]] = []
    async with channel.lock:
        first_tag = channel.delivery_tag + 1
        for (body, properties), message_id in zip(messages, ids, strict=True):
            channel.delivery_tag += 1
            confirmation: asyncio.Future[ConfirmationFrameType] = channel.create_future()
            channel.confirmations[channel.delivery_tag] = confirmation
            channel.message_id_delivery_tag[str(message_id)] = channel.delivery_tag
            confirmations.append(confirmation)
            frames += (
                publish,
                ContentHeader(properties=properties, body_size=len(body)),
                ContentBody(body),
            )
        drain: asyncio.Future[None] = channel.create_future()
        try:
            await channel.write_queue.put(
                ChannelFrame.marshall(
                    frames=frames, channel_number=channel.number, drain_future=drain
                )
            )
        except BaseException:
            # Nothing reached the queue: the tags are free again (as basic_publish).
            _forget(channel, ids, first_tag, confirmations)
            channel.delivery_tag = first_tag - 1
            raise
        for tag, (message_id, confirmation) in enumerate(
            zip(ids, confirmations, strict=True), first_tag
        ):
            confirmation.add_done_callback(_forgetter(channel, str(message_id), tag))
        try:
            await drain
        except BaseException:
            drain.cancel()
            raise
    return confirmations


def _forgetter(
    channel: Channel, message_id: str, tag: int
) -> Callable[[asyncio.Future[ConfirmationFrameType]], None]:
    """Drops the message id's entry once its confirmation settled, unless a later publish
    with the same id took it over (``basic_publish``'s ``forget_message_id``)."""

    def forget(_: asyncio.Future[ConfirmationFrameType]) -> None:
        if channel.message_id_delivery_tag.get(message_id) == tag:
            channel.message_id_delivery_tag.pop(message_id)

    return forget


def _forget(
    channel: Channel,
    ids: Sequence[str | None],
    first_tag: int,
    confirmations: list[asyncio.Future[ConfirmationFrameType]],
) -> None:
    """Takes back the bookkeeping of messages that never reached the write queue."""
    for tag, (message_id, confirmation) in enumerate(
        zip(ids, confirmations, strict=True), first_tag
    ):
        channel.confirmations.pop(tag, None)
        if channel.message_id_delivery_tag.get(str(message_id)) == tag:
            channel.message_id_delivery_tag.pop(str(message_id))
        confirmation.cancel()
