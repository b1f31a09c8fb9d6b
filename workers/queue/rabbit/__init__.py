"""The RabbitMQ ``JobQueue``: the queue itself, its consumers and its topology; aio-pika is
imported only inside this folder."""

from workers.queue.rabbit.queue import RabbitJobQueue

__all__ = ["RabbitJobQueue"]
