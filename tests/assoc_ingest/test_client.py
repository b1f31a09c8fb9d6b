"""``IngestClient`` against the real front, whose broker loses a confirm: a re-run of an
interrupted submission changes nothing (SPEC §3, Idempotency)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from assoc_ingest.client import IngestClient
from ingest_api.app import create_app
from ingest_api.keys import new_api_key
from schemas import association_id
from schemas.jobids import new_job_id
from tests.backends import FAST_RETRY_TIERS, SqliteStoreFactory
from tests.faults import ConfirmLostQueue
from tests.ingest_api.support import make_settings
from tests.workers.factories import record
from tests.workers.helpers import fast_settings, wait_for_job
from workers.queue.base import Topology
from workers.store.records import EntityWrite, JobHeader, WriteBatch
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

ASN = ("asn", "15169")
ADDRESSES = [("ip", f"203.0.113.{n}") for n in range(1, 31)]


@pytest.fixture
async def queue(unique_name: str) -> AsyncIterator[ConfirmLostQueue]:
    queue = ConfirmLostQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await queue.start()
    yield queue
    await queue.close()


@pytest.fixture
async def store(sqlite_store: SqliteStoreFactory) -> SqliteStore:
    store = await sqlite_store()
    job = JobHeader(new_job_id(), "entity", "alice", (), 31, time.time())
    writes = [
        EntityWrite(key=(job.job_id, i), entities=(record(entity),))
        for i, entity in enumerate([ASN, *ADDRESSES])
    ]
    await store.write_batch(WriteBatch(now=time.time(), jobs=[job], entities=writes))
    return store


@pytest.fixture
async def front(
    queue: ConfirmLostQueue,
    store: SqliteStore,
    tmp_path: Path,
    aiohttp_server: Callable[[Any], Awaitable[TestServer]],
) -> AsyncIterator[tuple[str, tuple[str, str]]]:
    """The front's URL and alice's credentials; a worker consumes the same queue."""
    worker = Worker(queue, store, fast_settings(tmp_path))
    await worker.start()
    app = create_app(make_settings(), queue=queue, store=store, manage_backends=False)
    server = await aiohttp_server(app)
    key, secret = new_api_key("alice", ["reporter"], [], 30, time.time())
    await store.put_api_key(key)
    yield str(server.make_url("/")), (key.key_id, secret)
    await worker.stop(5)


def _source(path: Path) -> Path:
    with path.open("w") as handle:
        for address in ADDRESSES:
            body = {"entityID": _id(ASN), "relatedEntityID": _id(address)}
            handle.write(json.dumps(body) + "\n")
    return path


def _id(entity: tuple[str, str]) -> str:
    return record(entity).id


async def test_a_rerun_of_a_submission_whose_chunk_was_refused_after_the_broker_took_it(
    front: tuple[str, tuple[str, str]], queue: ConfirmLostQueue, store: SqliteStore, tmp_path: Path
) -> None:
    url, (key, secret) = front
    source = _source(tmp_path / "pairs.ndjson")
    queue.lose_at = frozenset({1})  # the second chunk: queued, but answered 503

    async with IngestClient(url, api_key=key, api_secret=secret, max_attempts=1) as client:
        interrupted = await client.submit_ndjson(
            source, "associations", chunk_items=10, concurrency=1
        )
    async with IngestClient(url, api_key=key, api_secret=secret) as client:
        rerun = await client.submit_ndjson(source, "associations", chunk_items=10)

    assert interrupted.accepted == 20
    assert {error["code"] for _, error in interrupted.rejected} == {"not_submitted"}
    assert (rerun.accepted, rerun.rejected) == (30, [])
    assert set(interrupted.job_ids) < set(rerun.job_ids)
    for job_id in rerun.job_ids:
        status = await wait_for_job(store, job_id)
        assert (status.total, status.counts) == (10, {"stored": 10})
    for address in ADDRESSES:
        found = await store.get_association(association_id(_id(ASN), _id(address)))
        assert found is not None
        assert found.submissions == 1
