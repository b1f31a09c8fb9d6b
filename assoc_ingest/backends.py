"""Choosing and opening the transport and the store from the settings.

``open_backends`` is for commands that run inside one process (the CLI's administration
commands, tools): RabbitMQ when ``AMQP_URL`` is set, else the in-process memory queue when the
caller says that is good enough; MongoDB when ``MONGODB_URL`` is set, else the embedded store
under ``data_dir``. The ``*_session`` context managers open, start and always close them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from assoc_ingest.errors import ConfigurationError
from assoc_ingest.settings import Settings
from workers.queue.base import JobQueue
from workers.store import open_store
from workers.store.base import Store

__all__ = [
    "open_backends",
    "open_job_queue",
    "queue_session",
    "store_session",
]


def open_job_queue(settings: Settings, *, memory_queue_ok: bool) -> JobQueue:
    """An unstarted queue: ``RabbitJobQueue`` when ``amqp_url`` is set, else ``MemoryJobQueue``
    if ``memory_queue_ok``; raises ``ConfigurationError`` when neither applies (the memory queue
    of another process cannot be reached from here)."""
    if settings.amqp_url:
        from workers.queue.rabbit import RabbitJobQueue

        return RabbitJobQueue(settings.amqp_url, settings.topology())
    if not memory_queue_ok:
        raise ConfigurationError(
            "AMQP_URL is not set: this command needs the RabbitMQ broker "
            "(the in-process memory queue of another process cannot be reached)"
        )
    from workers.queue.memory import MemoryJobQueue

    return MemoryJobQueue(settings.topology())


async def open_backends(settings: Settings, *, memory_queue_ok: bool) -> tuple[JobQueue, Store]:
    """The queue and the store of ``settings``, both started; the caller closes both.

    Raises ``ConfigurationError`` as ``open_job_queue`` does, and ``TransientError`` when a
    backend cannot be reached (the store is closed again then).
    """
    queue = open_job_queue(settings, memory_queue_ok=memory_queue_ok)
    store = _open_store(settings)
    await store.start()
    try:
        await queue.start()
    except BaseException:
        await store.close()
        raise
    return queue, store


def _open_store(settings: Settings) -> Store:
    if settings.mongodb_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(settings)


@asynccontextmanager
async def store_session(settings: Settings) -> AsyncIterator[Store]:
    """The started store of ``settings``, closed on exit (the data directory is created)."""
    store = _open_store(settings)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def queue_session(settings: Settings, *, memory_queue_ok: bool) -> AsyncIterator[JobQueue]:
    """The started queue of ``settings``, closed on exit (see ``open_job_queue``)."""
    queue = open_job_queue(settings, memory_queue_ok=memory_queue_ok)
    await queue.start()
    try:
        yield queue
    finally:
        await queue.close()
