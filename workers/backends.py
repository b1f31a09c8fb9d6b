"""Assembling a process's backends from the settings: the one place that picks the adapters.

RabbitMQ when ``AMQP_URL`` is set, else the in-process memory queue where the process says that
is good enough (``dev`` and single-process tools); MongoDB when ``MONGODB_URL`` is set, else the
embedded store under ``data_dir``. ``api``, ``worker``, ``dev`` and the administration commands
all go through ``assemble_backends``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from workers.ground.errors import ConfigurationError
from workers.ground.settings import Settings
from workers.queue.base import JobQueue, Topology
from workers.store.base import Store

__all__ = [
    "SQLITE_FILE_NAME",
    "Backends",
    "assemble_backends",
    "backends_session",
    "open_job_queue",
    "open_store",
    "queue_session",
    "store_session",
]

SQLITE_FILE_NAME = "assoc-ingest.sqlite3"


@dataclass(frozen=True, slots=True)
class Backends:
    """The queue and the store of one process, with their lifecycle."""

    queue: JobQueue
    store: Store

    @property
    def description(self) -> dict[str, str]:
        """What an operator reads at start: which adapter serves each port."""
        return {"queue": type(self.queue).__name__, "store": type(self.store).__name__}

    async def start(self) -> None:
        """Start the store, then the queue; raises ``TransientError`` when either cannot be
        reached (the store is closed again then)."""
        await self.store.start()
        try:
            await self.queue.start()
        except BaseException:
            await self.store.close()
            raise

    async def close(self) -> None:
        """Close the store, then the transport (as a worker shuts down)."""
        try:
            await self.store.close()
        finally:
            await self.queue.close()


def open_store(settings: Settings) -> Store:
    """The store the settings describe, not started yet: ``MongoStore`` when
    ``settings.mongodb_url`` is set, else ``SqliteStore`` on ``data_dir / SQLITE_FILE_NAME``
    (the directory is created)."""
    if settings.mongodb_url is not None:
        from workers.store.mongo import MongoStore  # imported only when MongoDB is used

        return MongoStore(
            settings.mongodb_url.get_secret_value(),
            settings.mongodb_database,
            job_ttl=settings.job_ttl,
            allow_standalone=settings.mongodb_allow_standalone,
        )
    from workers.store.sqlite import SqliteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(settings.data_dir / SQLITE_FILE_NAME, job_ttl=settings.job_ttl)


def open_job_queue(settings: Settings, *, memory_queue_ok: bool) -> JobQueue:
    """An unstarted queue: ``RabbitJobQueue`` when ``amqp_url`` is set, else ``MemoryJobQueue``
    if ``memory_queue_ok``; raises ``ConfigurationError`` when neither applies."""
    topology = Topology.from_settings(settings)
    if settings.amqp_url:
        from workers.queue.rabbit import RabbitJobQueue

        return RabbitJobQueue(settings.amqp_url, topology)
    if not memory_queue_ok:
        raise ConfigurationError(
            "AMQP_URL is not set: this command needs the RabbitMQ broker "
            "(the in-process memory queue of another process cannot be reached)"
        )
    from workers.queue.memory import MemoryJobQueue

    return MemoryJobQueue(topology)


def assemble_backends(settings: Settings, *, memory_queue_ok: bool) -> Backends:
    """The queue and the store of ``settings``, not started (``Backends.start``)."""
    return Backends(open_job_queue(settings, memory_queue_ok=memory_queue_ok), open_store(settings))


@asynccontextmanager
async def backends_session(settings: Settings, *, memory_queue_ok: bool) -> AsyncIterator[Backends]:
    """The started backends of ``settings``, closed on exit."""
    backends = assemble_backends(settings, memory_queue_ok=memory_queue_ok)
    await backends.start()
    try:
        yield backends
    finally:
        await backends.close()


@asynccontextmanager
async def store_session(settings: Settings) -> AsyncIterator[Store]:
    """The started store of ``settings`` alone, closed on exit (administration commands)."""
    store = open_store(settings)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def queue_session(settings: Settings, *, memory_queue_ok: bool) -> AsyncIterator[JobQueue]:
    """The started queue of ``settings`` alone, closed on exit (see ``open_job_queue``)."""
    queue = open_job_queue(settings, memory_queue_ok=memory_queue_ok)
    await queue.start()
    try:
        yield queue
    finally:
        await queue.close()
