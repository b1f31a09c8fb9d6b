"""Fixtures of the tests of the roof (CLI, importers): where the real feed samples are, and a
real front with a worker for the commands that submit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from assoc_ingest.client import IngestClient
from ingest_api.app import create_app
from ingest_api.keys import new_api_key
from tests.backends import MemoryQueueFactory, SqliteStoreFactory
from tests.ingest_api.support import make_settings
from tests.workers.helpers import fast_settings
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

FEEDS_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "feeds"


@pytest.fixture(scope="session")
def feeds_dir() -> Path:
    """``shared/data/feeds`` beside the checkout (never copied into the project)."""
    assert FEEDS_DIR.is_dir(), f"the feed samples are missing: expected them in {FEEDS_DIR}"
    return FEEDS_DIR


@dataclass
class Front:
    """A real front on a test server, its store, and the headers of a reporter's API key."""

    client: TestClient[Any, Any]
    store: SqliteStore
    headers: dict[str, str]

    def ingest_client(self) -> IngestClient:
        return IngestClient(
            str(self.client.make_url("/")),
            api_key=self.headers["api-key"],
            api_secret=self.headers["api-secret"],
        )


@pytest.fixture
async def front(
    sqlite_store: SqliteStoreFactory,
    memory_queue: MemoryQueueFactory,
    aiohttp_client: Any,
    tmp_path: Path,
) -> AsyncIterator[Front]:
    """The real front and a worker, on the in-process queue and an embedded store."""
    store = await sqlite_store()
    queue = await memory_queue()
    client = await aiohttp_client(
        create_app(make_settings(), queue=queue, store=store, manage_backends=False)
    )
    record, secret = new_api_key("feeds", ["reporter", "user"], [], 30, time.time())
    await store.put_api_key(record)
    worker = Worker(queue, store, fast_settings(tmp_path))
    await worker.start()
    yield Front(client, store, {"api-key": record.key_id, "api-secret": secret})
    await worker.stop(5)
