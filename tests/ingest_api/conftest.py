"""Fixtures of the front's tests: the real broker (a topology per test), the embedded store,
and a client speaking real HTTP to the app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from ingest_api.app import create_app
from ingest_api.keys import new_api_key
from tests.ingest_api.support import JWT_SECRET
from workers.ground.settings import Settings
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue
from workers.queue.rabbit import RabbitJobQueue
from workers.store.sqlite import SqliteStore

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": SecretStr(JWT_SECRET),
        "publish_timeout": 2.0,
        "types_refresh_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    sqlite = SqliteStore(tmp_path / "store.sqlite3")
    await sqlite.start()
    try:
        yield sqlite
    finally:
        await sqlite.close()


@pytest.fixture
async def rabbit(amqp_url: str, unique_name: str) -> AsyncIterator[RabbitJobQueue]:
    """A started RabbitMQ queue on a topology of this test's own, deleted afterwards."""
    queue = RabbitJobQueue(
        amqp_url, Topology(base=unique_name, max_length=1000), reconnect_interval=1.0
    )
    await queue.start()
    try:
        yield queue
    finally:
        await queue.start()  # reconnects if the test cut the connection
        await queue.delete_topology()
        await queue.close()


@pytest.fixture
async def small_rabbit(amqp_url: str, unique_name: str) -> AsyncIterator[RabbitJobQueue]:
    """A RabbitMQ work queue that holds one message at most. List it before ``make_client``
    in a test's arguments so that the app stops before the topology is deleted."""
    queue = RabbitJobQueue(amqp_url, Topology(base=unique_name + "-small", max_length=1))
    await queue.start()
    try:
        yield queue
    finally:
        await queue.start()
        await queue.delete_topology()
        await queue.close()


@pytest.fixture
def make_client(aiohttp_client: Any, store: SqliteStore, rabbit: RabbitJobQueue) -> ClientFactory:
    """Builds a client of the front on ``rabbit`` (or the given queue) and the test's store."""

    async def make(queue: Any = None, **overrides: Any) -> TestClient[Any, Any]:
        app = create_app(
            make_settings(**overrides),
            queue=queue if queue is not None else rabbit,
            store=store,
            manage_backends=False,
        )
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture
async def memory_client(
    aiohttp_client: Any, store: SqliteStore
) -> AsyncIterator[TestClient[Any, Any]]:
    """A client of the front on the in-process queue and the test's store (no broker), for
    tests of endpoints that do not publish."""
    queue = MemoryJobQueue(Topology(base="memory"))
    await queue.start()
    app = create_app(make_settings(), queue=queue, store=store, manage_backends=False)
    try:
        yield await aiohttp_client(app)
    finally:
        await queue.close()


@pytest.fixture
async def api_key(store: SqliteStore) -> dict[str, str]:
    """Headers of a valid API key of ``alice`` (reporter, groups soc)."""
    record, secret = new_api_key("alice", ["reporter"], ["soc"], 30, time.time())
    await store.put_api_key(record)
    return {"api-key": record.key_id, "api-secret": secret}
