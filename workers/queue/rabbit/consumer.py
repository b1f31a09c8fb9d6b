"""Consumers and deliveries of the RabbitMQ ``JobQueue``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from workers.ground.errors import BrokerUnavailable
from workers.ground.logs import get_logger
from workers.queue.base import MessageHandler


class Republisher(Protocol):
    """What a delivery needs of its queue to settle by publishing (``RabbitJobQueue``)."""

    async def publish_delayed(
        self, body: bytes, *, message_id: str, headers: Mapping[str, Any], delay: float
    ) -> None: ...

    async def publish_dead(
        self, body: bytes, *, message_id: str, headers: Mapping[str, Any], reason: str
    ) -> None: ...


__all__ = ["RabbitConsumer", "RabbitDelivery"]

log = get_logger(__name__)

_BROKER_ERRORS = (*CONNECTION_EXCEPTIONS, TimeoutError)


class RabbitDelivery:
    """One message received from RabbitMQ; settle it exactly once.

    Settling twice raises ``RuntimeError``. When settling fails (the channel died, the retry or
    dead-letter publish was not confirmed) it raises ``BrokerUnavailable`` and the delivery stays
    unsettled: the broker redelivers it once its channel is gone.
    """

    def __init__(
        self, queue: Republisher, consumer: RabbitConsumer, message: AbstractIncomingMessage
    ) -> None:
        self._queue = queue
        self._consumer = consumer
        self._message = message
        self._headers: dict[str, Any] = dict(message.headers or {})
        self._settling = False
        self.settled = False

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def message_id(self) -> str:
        return self._message.message_id or ""

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    @property
    def headers(self) -> Mapping[str, Any]:
        return self._headers

    def _begin(self) -> None:
        if self.settled or self._settling:
            raise RuntimeError(f"delivery {self.message_id} is already settled")
        self._settling = True

    def _end(self, ok: bool) -> None:
        self._settling = False
        if ok:
            self.settled = True
            self._consumer.settled(self)

    async def _run(self, step: str, publish: Callable[[], Awaitable[None]] | None = None) -> None:
        self._begin()
        ok = False
        try:
            if publish is not None:
                await publish()
            try:
                if step == "requeue":
                    await self._message.nack(requeue=True)
                else:
                    await self._message.ack()
            except _BROKER_ERRORS as exc:
                raise BrokerUnavailable(f"cannot {step} delivery: {exc!r}") from exc
            ok = True
        finally:
            self._end(ok)

    async def ack(self) -> None:
        await self._run("ack")

    async def retry_later(
        self, delay: float, body: bytes | None = None, headers: Mapping[str, Any] | None = None
    ) -> None:
        def publish() -> Awaitable[None]:
            return self._queue.publish_delayed(
                self.body if body is None else body,
                message_id=self.message_id,
                headers={**self._headers, **(headers or {})},
                delay=delay,
            )

        await self._run("ack", publish)

    async def dead_letter(self, reason: str) -> None:
        def publish() -> Awaitable[None]:
            return self._queue.publish_dead(
                self.body, message_id=self.message_id, headers=self._headers, reason=reason
            )

        await self._run("ack", publish)

    async def dead_letter_items(self, body: bytes, reason: str) -> None:
        """Publish ``body`` to the dead-letter queue (confirmed); the delivery stays unsettled."""
        if self.settled or self._settling:
            raise RuntimeError(f"delivery {self.message_id} is already settled")
        await self._queue.publish_dead(
            body, message_id=self.message_id, headers=self._headers, reason=reason
        )

    async def requeue(self) -> None:
        await self._run("requeue")


class RabbitConsumer:
    """A consumer on its own channel; ``stop`` cancels it (the ``ConsumerHandle``).

    After ``stop`` the deliveries already handed out may still be settled; the channel is
    closed at once when none is outstanding, else when the queue is closed (the broker then
    redelivers whatever stayed unsettled).
    """

    def __init__(
        self,
        queue: Republisher,
        channel: AbstractRobustChannel,
        amqp_queue: AbstractQueue,
        handler: MessageHandler,
    ) -> None:
        self._queue = queue
        self._channel = channel
        self._amqp_queue = amqp_queue
        self._handler = handler
        self._tag: str | None = None
        self._unsettled: set[RabbitDelivery] = set()
        self._stopped = False

    async def start(self) -> None:
        self._tag = await self._amqp_queue.consume(self._on_message, no_ack=False)

    async def stop(self) -> None:
        """Stop receiving new messages; deliveries already handed out may still be settled."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._tag is not None and not self._channel.is_closed:
                await self._amqp_queue.cancel(self._tag)
            if not self._unsettled and not self._channel.is_closed:
                await self._channel.close()
        except _BROKER_ERRORS as exc:
            log.warning("queue.consumer_stop_failed", error=repr(exc))

    def settled(self, delivery: RabbitDelivery) -> None:
        self._unsettled.discard(delivery)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        delivery = RabbitDelivery(self._queue, self, message)
        self._unsettled.add(delivery)
        try:
            await self._handler(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("queue.handler_failed", message_id=delivery.message_id)
            if not delivery.settled:
                try:
                    await delivery.dead_letter(f"handler failed: {exc!r}")
                except (BrokerUnavailable, RuntimeError):
                    log.warning("queue.dead_letter_failed", message_id=delivery.message_id)
