"""Fixtures shared by every test package: one factory per backend, unique names, CI rules.

Backends: ``sqlite_store`` and ``memory_queue`` (in-process, always there), ``rabbit_queue``
(the real broker) and ``mongo_store`` (a real MongoDB); ``job_queue`` is the queue factory of
each backend in turn, for tests every queue implementation must pass. The factories are in
``tests/backends.py``.

Under ``CI=true`` a test that needs RabbitMQ fails when the broker is unreachable; elsewhere it
is skipped with the reason. MongoDB tests run only when ``MONGODB_URL`` is set.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

import pytest

from tests.backends import (
    JobQueueFactory,
    MemoryQueueFactory,
    MongoStoreFactory,
    RabbitQueueFactory,
    SqliteStoreFactory,
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
        message = f"RabbitMQ is not reachable at {urlparse(url).hostname}:{urlparse(url).port}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: broker tests must not skip)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mongodb_url() -> str:
    """URL of a real MongoDB server; the test is skipped when ``MONGODB_URL`` is not set."""
    url = os.environ.get("MONGODB_URL")
    if not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server to test against")
    return url


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


@pytest.fixture(params=["memory", pytest.param("rabbit", marks=pytest.mark.rabbitmq)])
def job_queue(request: pytest.FixtureRequest) -> JobQueueFactory:
    """The queue factory of each backend in turn: the memory queue and the real RabbitMQ."""
    fixture = "memory_queue" if request.param == "memory" else "rabbit_queue"
    return cast(JobQueueFactory, request.getfixturevalue(fixture))
