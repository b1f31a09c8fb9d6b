"""Fixtures of the front's tests: a client speaking real HTTP to the app, built on the
in-process queue and the embedded store of the test (from the factories of
``tests/conftest.py``).

A test of RabbitMQ behaviour builds its own queue with ``rabbit_queue`` (listed before
``make_client``) and passes it: ``await make_client(await rabbit_queue())``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest_api.app import create_app
from ingest_api.keys import new_api_key
from tests.backends import MemoryQueueFactory, SqliteStoreFactory
from tests.ingest_api.support import ClientFactory, make_settings
from workers.queue.base import JobQueue
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore


@pytest.fixture
async def store(sqlite_store: SqliteStoreFactory) -> SqliteStore:
    """The store of the front under test."""
    return await sqlite_store()


@pytest.fixture
async def queue(memory_queue: MemoryQueueFactory) -> MemoryJobQueue:
    """The queue of the front under test, unless the test passes another to ``make_client``."""
    return await memory_queue()


@pytest.fixture
def make_client(store: SqliteStore, queue: MemoryJobQueue, aiohttp_client: Any) -> ClientFactory:
    """Builds a client of the front on ``queue`` (or the queue given) and ``store``, with the
    settings given; the app stops before its queue and store close."""
    default_queue = queue

    async def make(queue: JobQueue | None = None, **overrides: Any) -> TestClient[Any, Any]:
        app = create_app(
            make_settings(**overrides),
            queue=default_queue if queue is None else queue,
            store=store,
            manage_backends=False,
        )
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient[Any, Any]:
    """A client of the front on the in-process queue and the embedded store."""
    return await make_client()


@pytest.fixture
async def api_key(store: SqliteStore) -> dict[str, str]:
    """Headers of a valid API key of ``alice`` (reporter, groups soc)."""
    record, secret = new_api_key("alice", ["reporter"], ["soc"], 30, time.time())
    await store.put_api_key(record)
    return {"api-key": record.key_id, "api-secret": secret}
