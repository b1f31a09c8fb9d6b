"""Declaring and deleting the RabbitMQ objects a ``Topology`` names.

- ``<base>``: durable direct exchange; the work queue is bound to it with ``jobs``.
- ``<base>.jobs``: the work queue (quorum by default), ``x-max-length`` with
  ``x-overflow: reject-publish`` so that a full queue nacks publishes instead of dropping
  messages, and ``<base>.dlx`` as its dead-letter exchange (rejected messages are kept).
- ``<base>.dlx`` (fanout) -> ``<base>.dead``: the dead-letter queue.
- ``<base>.retry.<ms>ms``: one delay queue per retry tier; a message waits there for the tier's
  ``x-message-ttl`` and is then dead-lettered back to the work exchange with the work routing key.

Declaring is idempotent as long as the arguments do not change (RabbitMQ refuses to redeclare a
queue with other arguments: ``PRECONDITION_FAILED``, which surfaces as ``ConfigurationError``).
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustChannel

from workers.ground.errors import ConfigurationError
from workers.queue.base import Topology

__all__ = [
    "declare_topology",
    "delete_topology",
    "retry_queue_arguments",
    "work_queue_arguments",
]


def work_queue_arguments(topology: Topology) -> dict[str, Any]:
    return {
        "x-queue-type": topology.queue_type,
        "x-max-length": topology.max_length,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": topology.dead_exchange,
    }


def dead_queue_arguments(topology: Topology) -> dict[str, Any]:
    return {"x-queue-type": topology.queue_type}


def retry_queue_arguments(topology: Topology, tier: float) -> dict[str, Any]:
    """A delay queue: messages wait out the TTL, then dead-letter back to the work queue.

    Dead-lettering is at most once by default: a message whose TTL ran out while the broker
    was stopping was silently dropped (``make chaos`` lost whole retried jobs across one
    ``stop_app``). Quorum queues can dead-letter at least once (RabbitMQ >= 3.10), which needs
    ``reject-publish`` overflow on the delay queue itself.
    """
    arguments: dict[str, Any] = {
        "x-queue-type": topology.queue_type,
        "x-message-ttl": int(tier * 1000),
        "x-dead-letter-exchange": topology.exchange,
        "x-dead-letter-routing-key": topology.work_routing_key,
    }
    if topology.queue_type == "quorum":
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    return arguments


async def declare_topology(channel: AbstractRobustChannel, topology: Topology) -> None:
    """Declare every exchange and queue of ``topology`` (durable; re-declared on reconnect)."""
    try:
        exchange = await channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead_exchange = await channel.declare_exchange(
            topology.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        work = await channel.declare_queue(
            topology.work_queue, durable=True, arguments=work_queue_arguments(topology)
        )
        await work.bind(exchange, routing_key=topology.work_routing_key)
        dead = await channel.declare_queue(
            topology.dead_queue, durable=True, arguments=dead_queue_arguments(topology)
        )
        await dead.bind(dead_exchange, routing_key="")
        for tier in topology.retry_tiers:
            await channel.declare_queue(
                topology.retry_queue(tier),
                durable=True,
                arguments=retry_queue_arguments(topology, tier),
            )
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        raise ConfigurationError(
            f"the broker holds a topology {topology.base!r} declared with other arguments: {exc}"
        ) from exc


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Delete every queue and exchange of ``topology``, with their messages (tests, benches)."""
    underlay = await channel.get_underlay_channel()
    names = [topology.work_queue, topology.dead_queue]
    names += [topology.retry_queue(tier) for tier in topology.retry_tiers]
    for name in names:
        await underlay.queue_delete(name)
    for name in (topology.exchange, topology.dead_exchange):
        await underlay.exchange_delete(name)
