"""Fixtures shared by every test package: one factory per backend, unique names, CI rules.

Backends: ``sqlite_store`` and ``memory_queue`` (in-process, always there), ``rabbit_queue``
(the real broker) and ``mongo_store`` (a MongoDB server); ``job_queue`` and ``store_factory``
are the factories of each queue and each store in turn, for tests every implementation must
pass. The factories are in
``tests/backends.py``.

Under ``CI=true`` a test that needs RabbitMQ fails when the broker is unreachable; elsewhere it
is skipped with the reason. MongoDB tests run on the server ``MONGODB_URL`` names (a real mongod
or Atlas), else on one SecantusDB server started for the whole session
(``bench.compatible_mongo``), each test on a database of its own; under ``CI=true`` they fail,
never skip, when that server cannot start.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn, cast
from urllib.parse import urlparse

import pytest

from bench.compatible_mongo import CompatibleMongo
from tests.backends import (
    JobQueueFactory,
    MemoryQueueFactory,
    MongoStoreFactory,
    RabbitQueueFactory,
    SqliteStoreFactory,
    StoreFactory,
)

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """URL of the real RabbitMQ broker (``AMQP_URL`` or the local default)."""
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not _reachable(url):
        _unavailable(f"RabbitMQ is not reachable at {urlparse(url).hostname}:{urlparse(url).port}")
    return url


def _unavailable(message: str) -> NoReturn:
    """Fail under ``CI=true`` (a backend test never skips there), else skip with ``message``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: backend tests must not skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a MongoDB server: ``MONGODB_URL`` when set, else a SecantusDB server started once
    for the session (a one-member replica set, so transactions work)."""
    url = os.environ.get("MONGODB_URL")
    if url:
        yield url
        return
    server = CompatibleMongo(tmp_path_factory.mktemp("secantus"))
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        _unavailable(f"no MongoDB server to test against: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses: the base of a queue topology or a database."""
    return f"test-{uuid.uuid4().hex[:12]}"


# one factory per backend ----------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStoreFactory]:
    """Makes started embedded stores under ``tmp_path``: ``await sqlite_store()``."""
    factory = SqliteStoreFactory(tmp_path)
    yield factory
    await factory.close_all()


@pytest.fixture
async def mongo_store(mongodb_url: str, unique_name: str) -> AsyncIterator[MongoStoreFactory]:
    """Makes started MongoDB stores, each on a database of its own, dropped afterwards."""
    factory = MongoStoreFactory(mongodb_url, unique_name)
    yield factory
    await factory.close_all()


@pytest.fixture
async def memory_queue(unique_name: str) -> AsyncIterator[MemoryQueueFactory]:
    """Makes started in-process queues: ``await memory_queue()``."""
    factory = MemoryQueueFactory(unique_name)
    yield factory
    await factory.close_all()


@pytest.fixture
async def rabbit_queue(amqp_url: str, unique_name: str) -> AsyncIterator[RabbitQueueFactory]:
    """Makes started RabbitMQ queues on topologies of the test's own, deleted afterwards.

    A test that also builds an app or a worker on such a queue lists ``rabbit_queue`` first,
    so that the app or worker stops before the topology is deleted."""
    factory = RabbitQueueFactory(amqp_url, unique_name)
    yield factory
    await factory.close_all()


@pytest.fixture(params=["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """The store factory of each implementation in turn: the embedded store and MongoDB."""
    fixture = "sqlite_store" if request.param == "sqlite" else "mongo_store"
    return cast(StoreFactory, request.getfixturevalue(fixture))


@pytest.fixture(params=["memory", pytest.param("rabbit", marks=pytest.mark.rabbitmq)])
def job_queue(request: pytest.FixtureRequest) -> JobQueueFactory:
    """The queue factory of each backend in turn: the memory queue and the real RabbitMQ."""
    fixture = "memory_queue" if request.param == "memory" else "rabbit_queue"
    return cast(JobQueueFactory, request.getfixturevalue(fixture))
