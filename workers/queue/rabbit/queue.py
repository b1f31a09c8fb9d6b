"""The RabbitMQ ``JobQueue`` on aio-pika (robust connection, publisher confirms).

One robust connection carries an administration channel (declarations, depth), a publishing
channel in confirm mode shared by every publish (the front's and the workers' retries and dead
letters), and one channel per consumer with its own QoS. ``publish`` returns only once the broker
confirmed the message; every failure becomes ``BrokerUnavailable`` (``QueueFull`` when the work
queue refused it at its maximum length), and while the connection is down a publish fails at once
instead of waiting for the reconnection. Deliveries received on a channel that has since died
cannot be settled (``BrokerUnavailable``): the broker redelivers them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError, PublishError

from schemas.messages import SCHEMA_VERSION
from workers.ground.errors import BrokerUnavailable, QueueFull
from workers.ground.logs import get_logger
from workers.queue.base import (
    DEATH_REASON_HEADER,
    RETRY_HEADERS,
    SCHEMA_VERSION_HEADER,
    DeadLetter,
    MessageHandler,
    Topology,
)
from workers.queue.rabbit import topology as rabbit_topology
from workers.queue.rabbit.consumer import RabbitConsumer

__all__ = ["RabbitJobQueue"]

log = get_logger(__name__)

_BROKER_ERRORS = (*CONNECTION_EXCEPTIONS, TimeoutError)


class RabbitJobQueue:
    """The RabbitMQ ``JobQueue`` (contract in ``workers.queue.base``).

    ``start`` may be called again after ``close`` (a new connection is opened).
    """

    def __init__(self, url: str, topology: Topology, *, reconnect_interval: float = 1.0) -> None:
        self.topology = topology
        self._url = url
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._admin: AbstractRobustChannel | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._consumers: list[RabbitConsumer] = []
        # Exchange handles of the publishing channel; they follow it across reconnections.
        self._exchanges: dict[str, AbstractExchange] = {}

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._connection is not None:
            if not self._connection.is_closed:
                return
            await self.close()  # closed from outside: start afresh
        try:
            connection = await aio_pika.connect_robust(
                self._url, reconnect_interval=self._reconnect_interval
            )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot connect to the broker: {exc!r}") from exc
        try:
            admin = await connection.channel(publisher_confirms=False)
            await rabbit_topology.declare_topology(admin, self.topology)
            publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._admin, self._publisher = connection, admin, publisher
        log.info("queue.started", topology=self.topology.base, queue=self.topology.work_queue)

    async def close(self) -> None:
        """Close the connection; unacked deliveries are redelivered by the broker."""
        connection, self._connection = self._connection, None
        self._admin = self._publisher = None
        self._consumers.clear()
        self._exchanges.clear()
        if connection is not None and not connection.is_closed:
            await connection.close()

    @property
    def connection(self) -> AbstractRobustConnection | None:
        """The underlying aio-pika connection (tests close it to simulate a broker loss)."""
        return self._connection

    @property
    def connected(self) -> bool:
        connection, publisher = self._connection, self._publisher
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
            and publisher is not None
            and not publisher.is_closed
        )

    # publishing -------------------------------------------------------------------------
    async def publish(
        self,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Publish to the work queue and wait for the confirm (see ``workers.queue.base``)."""
        message = _message(body, message_id, headers)
        await self._confirm(
            self.topology.exchange, self.topology.work_routing_key, message, timeout, work=True
        )

    async def publish_delayed(
        self, body: bytes, *, message_id: str, headers: Mapping[str, Any], delay: float
    ) -> None:
        """Publish to the delay queue of ``topology.tier_for(delay)``, confirmed."""
        queue = self.topology.retry_queue(self.topology.tier_for(delay))
        await self._confirm("", queue, _message(body, message_id, headers), 5.0, work=False)

    async def publish_dead(
        self, body: bytes, *, message_id: str, headers: Mapping[str, Any], reason: str
    ) -> None:
        """Publish to the dead-letter exchange with ``reason`` in ``x-death-reason``, confirmed."""
        all_headers = {**headers, DEATH_REASON_HEADER: reason}
        message = _message(body, message_id, all_headers)
        await self._confirm(self.topology.dead_exchange, "", message, 5.0, work=False)

    async def _confirm(
        self,
        exchange_name: str,
        routing_key: str,
        message: aio_pika.Message,
        timeout: float,
        *,
        work: bool,
    ) -> None:
        publisher = self._publisher
        if publisher is None or not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        exchange = self._exchanges.get(exchange_name)
        if exchange is None:
            exchange = (
                publisher.default_exchange
                if exchange_name == ""
                else await publisher.get_exchange(exchange_name, ensure=False)
            )
            self._exchanges[exchange_name] = exchange
        try:
            await exchange.publish(message, routing_key, mandatory=True, timeout=timeout)
        except PublishError as exc:
            raise BrokerUnavailable(f"the broker returned the message: {exc}") from exc
        except DeliveryError as exc:
            if work and await self._work_queue_full():
                raise QueueFull(f"{self.topology.work_queue} is at its maximum length") from exc
            raise BrokerUnavailable(f"the broker refused the message: {exc}") from exc
        except TimeoutError as exc:
            raise BrokerUnavailable(f"no confirm from the broker within {timeout} s") from exc
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"lost the broker while publishing: {exc!r}") from exc

    async def _work_queue_full(self) -> bool:
        # A nack carries no reason; the work queue's only refusal is reject-publish overflow.
        try:
            return await self.depth() >= self.topology.max_length
        except BrokerUnavailable:
            return False

    # consuming --------------------------------------------------------------------------
    async def consume(self, handler: MessageHandler, *, prefetch: int) -> RabbitConsumer:
        """Consume the work queue on a channel of its own with ``prefetch`` as QoS."""
        connection = self._require_connection()
        try:
            channel = await connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=prefetch)
            queue = await channel.declare_queue(
                self.topology.work_queue,
                durable=True,
                arguments=rabbit_topology.work_queue_arguments(self.topology),
            )
            consumer = RabbitConsumer(self, channel, queue, handler)
            await consumer.start()
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot consume: {exc!r}") from exc
        self._consumers.append(consumer)
        return consumer

    # inspection -------------------------------------------------------------------------
    async def depth(self) -> int:
        admin = self._admin
        if admin is None or admin.is_closed:
            raise BrokerUnavailable("not connected to the broker")
        try:
            underlay = await asyncio.wait_for(admin.get_underlay_channel(), 5.0)
            declared = await underlay.queue_declare(
                self.topology.work_queue, passive=True, timeout=5.0
            )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read the queue depth: {exc!r}") from exc
        return int(declared.message_count or 0)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; they stay in the dead-letter queue."""
        connection = self._require_connection()
        found: list[DeadLetter] = []
        try:
            channel = await connection.channel(publisher_confirms=False)
            try:
                queue = await channel.get_queue(self.topology.dead_queue, ensure=False)
                taken: list[AbstractIncomingMessage] = []
                while len(taken) < limit:
                    message = await queue.get(no_ack=False, fail=False, timeout=5.0)
                    if message is None:
                        break
                    taken.append(message)
                    found.append(_dead_letter(message))
                for message in taken:
                    await message.nack(requeue=True)
            finally:
                await channel.close()
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read the dead letters: {exc!r}") from exc
        return found

    async def replay_dead_letters(self, limit: int) -> int:
        """Move up to ``limit`` dead letters to the work queue (each acked after its confirm)."""
        connection = self._require_connection()
        moved = 0
        try:
            channel = await connection.channel(publisher_confirms=False)
            try:
                queue = await channel.get_queue(self.topology.dead_queue, ensure=False)
                while moved < limit:
                    message = await queue.get(no_ack=False, fail=False, timeout=5.0)
                    if message is None:
                        break
                    headers = {
                        k: v
                        for k, v in (message.headers or {}).items()
                        if k
                        not in (
                            DEATH_REASON_HEADER,
                            "x-death",
                            "x-first-death-reason",
                            *RETRY_HEADERS,
                        )
                    }
                    try:
                        await self.publish(
                            message.body,
                            message_id=message.message_id or "",
                            headers=headers,
                        )
                    except BrokerUnavailable:
                        await message.nack(requeue=True)
                        raise
                    await message.ack()
                    moved += 1
            finally:
                await channel.close()
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"cannot replay the dead letters: {exc!r}") from exc
        return moved

    async def delete_topology(self) -> None:
        """Delete the topology's queues and exchanges with their messages (tests, benches)."""
        admin = self._admin
        if admin is None:
            raise BrokerUnavailable("not connected to the broker")
        await rabbit_topology.delete_topology(admin, self.topology)

    def _require_connection(self) -> AbstractRobustConnection:
        connection = self._connection
        if connection is None or not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        return connection


def _message(body: bytes, message_id: str, headers: Mapping[str, Any] | None) -> aio_pika.Message:
    all_headers: dict[str, Any] = {SCHEMA_VERSION_HEADER: SCHEMA_VERSION}
    all_headers.update(headers or {})
    return aio_pika.Message(
        body,
        headers=all_headers,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
    )


def _dead_letter(message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    reason = headers.get(DEATH_REASON_HEADER)
    if reason is None:
        # Dead-lettered by the broker itself (a reject without requeue): use its x-death entry.
        deaths = cast(list[Mapping[str, Any]], headers.get("x-death") or [{}])
        reason = deaths[0].get("reason", "unknown")
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return DeadLetter(
        message_id=message.message_id or "", reason=str(reason), body=message.body, headers=headers
    )
