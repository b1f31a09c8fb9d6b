"""One factory per backend, handed out by the fixtures of ``tests/conftest.py``.

A factory makes started backends for one test and, after the test, closes every one it made
(RabbitMQ topologies and MongoDB databases are deleted too). Tests ask for a factory fixture
(``sqlite_store``, ``mongo_store``, ``memory_queue``, ``rabbit_queue``) and call it:
``store = await sqlite_store()``, ``queue = await rabbit_queue(max_length=1)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar, overload

from workers.queue.base import JobQueue, Topology
from workers.queue.memory import MemoryJobQueue
from workers.queue.rabbit import RabbitJobQueue
from workers.store.base import Store
from workers.store.mongo import MongoStore
from workers.store.records import AfterEffects
from workers.store.sqlite import SqliteStore

FAST_RETRY_TIERS = (0.2, 0.5, 1.0, 2.0)
"""Retry delays of the test topologies: a retry or an entity wait takes a second or two."""

MAX_LENGTH = 10_000

S = TypeVar("S", bound=SqliteStore)
T = TypeVar("T")


async def _each(cleanup: Callable[[T], Awaitable[None]], made: list[T]) -> None:
    """Clean up every backend, newest first, even when one of them fails; then raise the
    first failure."""
    failures: list[BaseException] = []
    for backend in reversed(made):
        try:
            await cleanup(backend)
        except Exception as exc:
            failures.append(exc)
    made.clear()
    if failures:
        raise failures[0]


class JobQueueFactory(Protocol):
    """What a queue factory of any backend offers (the ``job_queue`` fixture)."""

    async def __call__(
        self, *, max_length: int = MAX_LENGTH, retry_tiers: tuple[float, ...] = FAST_RETRY_TIERS
    ) -> JobQueue: ...


class StoreFactory(Protocol):
    """What a store factory of any backend offers: a started store, with the test seam
    ``after_effects`` (``records.AfterEffects``) when given."""

    async def __call__(self, *, after_effects: AfterEffects | None = None) -> Store: ...


class SqliteStoreFactory:
    """Embedded stores in files under the test's ``tmp_path``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._made: list[SqliteStore] = []

    @overload
    async def __call__(
        self,
        name: str = ...,
        *,
        start: bool = ...,
        busy_timeout: float = ...,
        after_effects: AfterEffects | None = ...,
    ) -> SqliteStore: ...

    @overload
    async def __call__(
        self,
        name: str = ...,
        *,
        kind: type[S],
        start: bool = ...,
        busy_timeout: float = ...,
        after_effects: AfterEffects | None = ...,
    ) -> S: ...

    async def __call__(
        self,
        name: str = "store.sqlite3",
        *,
        kind: type[SqliteStore] = SqliteStore,
        start: bool = True,
        busy_timeout: float = 10.0,
        after_effects: AfterEffects | None = None,
    ) -> SqliteStore:
        """A store on the file ``name`` (the same name is the same file), started unless
        ``start`` is false; ``kind`` is a subclass of ``SqliteStore`` the test defines."""
        store = kind(self.directory / name, busy_timeout=busy_timeout, after_effects=after_effects)
        self._made.append(store)
        if start:
            await store.start()
        return store

    async def close_all(self) -> None:
        await _each(lambda store: store.close(), self._made)


class MongoStoreFactory:
    """MongoDB stores, each on a database of its own, dropped after the test."""

    def __init__(self, url: str, base: str) -> None:
        self.url = url
        self.base = base.replace("-", "_")
        self._made: list[MongoStore] = []

    async def __call__(
        self,
        *,
        database: str | None = None,
        allow_standalone: bool = False,
        after_effects: AfterEffects | None = None,
        start: bool = True,
    ) -> MongoStore:
        """A store on a database of its own, or on ``database`` (another store's), started
        unless ``start`` is false."""
        name = self.base if not self._made else f"{self.base}_{len(self._made) + 1}"
        store = MongoStore(
            self.url,
            database or name,
            allow_standalone=allow_standalone,
            after_effects=after_effects,
        )
        self._made.append(store)
        if start:
            await store.start()
        return store

    async def close_all(self) -> None:
        async def drop(store: MongoStore) -> None:
            try:
                await store.drop_database()
            finally:
                await store.close()

        await _each(drop, self._made)


class MemoryQueueFactory:
    """In-process queues."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._made: list[MemoryJobQueue] = []

    async def __call__(
        self,
        *,
        max_length: int = MAX_LENGTH,
        retry_tiers: tuple[float, ...] = FAST_RETRY_TIERS,
        start: bool = True,
    ) -> MemoryJobQueue:
        topology = Topology(base=self.base, retry_tiers=retry_tiers, max_length=max_length)
        queue = MemoryJobQueue(topology)
        self._made.append(queue)
        if start:
            await queue.start()
        return queue

    async def close_all(self) -> None:
        await _each(lambda queue: queue.close(), self._made)


class RabbitQueueFactory:
    """Queues on the real RabbitMQ, each on a topology of this test's own (named after
    ``unique_name``), deleted after the test even if the test cut the connection."""

    def __init__(self, url: str, base: str) -> None:
        self.url = url
        self.base = base
        self._made: list[RabbitJobQueue] = []

    def next_name(self) -> str:
        """The base name of the next topology this factory makes."""
        return self.base if not self._made else f"{self.base}-{len(self._made) + 1}"

    async def __call__(
        self,
        topology: Topology | None = None,
        *,
        max_length: int = MAX_LENGTH,
        retry_tiers: tuple[float, ...] = FAST_RETRY_TIERS,
        reconnect_interval: float = 1.0,
    ) -> RabbitJobQueue:
        """A started queue on ``topology``, by default a new one of this test's own."""
        if topology is None:
            topology = Topology(
                base=self.next_name(), retry_tiers=retry_tiers, max_length=max_length
            )
        queue = RabbitJobQueue(self.url, topology, reconnect_interval=reconnect_interval)
        await queue.start()  # a queue that cannot start declared nothing to delete
        self._made.append(queue)
        return queue

    async def close_all(self) -> None:
        async def delete(queue: RabbitJobQueue) -> None:
            try:
                await queue.start()  # reconnects when the test cut the connection
                await queue.delete_topology()
            finally:
                await queue.close()

        await _each(delete, self._made)
