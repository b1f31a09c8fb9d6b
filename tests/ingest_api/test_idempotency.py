"""``Idempotency-Key`` on writes (SPEC §3): a retry answers the first job, and its items are
processed once, whether the first attempt got a 202, a 503 or no answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from ingest_api.idempotency import HEADER, REPLAYED_HEADER
from ingest_api.keys import new_api_key
from ingest_api.state import STORE
from schemas import association_id
from schemas.jobids import new_job_id
from schemas.messages import EntityRecord
from tests.backends import FAST_RETRY_TIERS
from tests.faults import ConfirmLostQueue
from tests.ingest_api.support import ASN, BASE, IP, IP_2, URL, ClientFactory, consume
from tests.workers.helpers import eventually, fast_settings, wait_for_job
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue
from workers.store.records import EntityWrite, JobHeader, WriteBatch
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

Client = TestClient[Any, Any]
PAIR = {"entityID": ASN, "relatedEntityID": IP}
OTHER_PAIR = {"entityID": ASN, "relatedEntityID": IP_2}


def keyed(api_key: dict[str, str], key: str) -> dict[str, str]:
    return {**api_key, HEADER: key}


async def post(client: Client, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
    response = await client.post(f"{BASE}/{path}", headers=headers, **kwargs)
    return response.status, await response.json(), response.headers


@pytest.fixture
async def lossy_queue(unique_name: str) -> AsyncIterator[ConfirmLostQueue]:
    queue = ConfirmLostQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await queue.start()
    yield queue
    await queue.close()


# a retry gets the first job -------------------------------------------------------------------
async def test_a_retry_with_the_same_key_answers_the_first_job_and_queues_nothing_more(
    client: Client, queue: MemoryJobQueue, api_key: dict[str, str]
) -> None:
    inbox = await consume(queue)
    first = await post(client, "association", keyed(api_key, "req-1"), json=PAIR)
    await inbox.next()
    await eventually(lambda: _registered(client, first[1]["jobID"]))

    again = await post(client, "association", keyed(api_key, "req-1"), json=PAIR)

    assert first[0] == again[0] == 202
    assert again[1] == first[1] == {"message": "acknowledged", "jobID": first[1]["jobID"]}
    assert again[2][REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first[2]
    assert again[2]["Location"] == f"{BASE}/jobs/{first[1]['jobID']}"
    await asyncio.sleep(0.1)
    assert inbox.is_empty()


async def _registered(client: Client, job_id: str) -> bool:
    return await client.app[STORE].get_job(job_id) is not None


async def test_without_a_key_the_same_request_twice_is_two_jobs(
    client: Client, api_key: dict[str, str]
) -> None:
    first = await post(client, "association", api_key, json=PAIR)
    second = await post(client, "association", api_key, json=PAIR)

    assert first[1]["jobID"] != second[1]["jobID"]


async def test_a_bulk_retry_answers_the_same_job_accepted_and_rejected(
    client: Client, api_key: dict[str, str]
) -> None:
    body = b"\n".join(orjson.dumps(x) for x in (PAIR, {"entityID": "nope"}, OTHER_PAIR)) + b"\n"
    headers = {**keyed(api_key, "bulk-7"), "Content-Type": "application/x-ndjson"}

    first = await post(client, "associations", headers, data=body)
    again = await post(client, "associations", headers, data=body)

    assert first[0] == again[0] == 202
    assert again[1] == first[1]
    assert first[1]["accepted"] == 2
    assert [r["index"] for r in first[1]["rejected"]] == [1]


async def test_the_same_key_from_another_user_is_another_job(
    client: Client, api_key: dict[str, str], store: SqliteStore
) -> None:
    record, secret = new_api_key("bob", ["reporter"], [], 30, time.time())
    await store.put_api_key(record)
    bob = {"api-key": record.key_id, "api-secret": secret}

    alice_answer = await post(client, "association", keyed(api_key, "shared"), json=PAIR)
    bob_answer = await post(client, "association", keyed(bob, "shared"), json=PAIR)

    assert alice_answer[0] == bob_answer[0] == 202
    assert alice_answer[1]["jobID"] != bob_answer[1]["jobID"]


# a key reused for another request ----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [("association", OTHER_PAIR), ("entity", {"type": "domain", "attributes": {"domain": "a.eu"}})],
    ids=["another body", "another route"],
)
async def test_the_same_key_for_another_request_is_422_and_queues_nothing(
    client: Client, queue: MemoryJobQueue, api_key: dict[str, str], path: str, body: Any
) -> None:
    await post(client, "association", keyed(api_key, "req-2"), json=PAIR)
    depth = await queue.depth()

    status, answer, headers = await post(client, path, keyed(api_key, "req-2"), json=body)

    assert status == 422
    assert answer["error"]["code"] == "idempotency_key_reused"
    assert headers["x-error-id"] == answer["error"]["errorID"]
    assert await queue.depth() == depth


# the header ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    ["x" * 256, "with space", "tab\there", "caf\u00e9", ""],
    ids=["256 characters", "a space", "a control character", "not ASCII", "empty"],
)
async def test_a_key_that_is_not_1_to_255_visible_ascii_characters_is_400(
    client: Client, queue: MemoryJobQueue, api_key: dict[str, str], key: str
) -> None:
    headers = {**api_key, HEADER: key}

    status, answer, _ = await post(client, "association", headers, json=PAIR)

    assert status == 400
    assert answer["error"]["code"] == "invalid_idempotency_key"
    assert await queue.depth() == 0


async def test_a_key_of_255_visible_characters_is_accepted(
    client: Client, api_key: dict[str, str]
) -> None:
    key = ("!~" * 128)[:255]

    status, _, _ = await post(client, "association", keyed(api_key, key), json=PAIR)

    assert status == 202


async def test_an_invalid_body_reserves_nothing_so_the_corrected_body_may_use_the_key(
    client: Client, api_key: dict[str, str]
) -> None:
    bad = await post(client, "association", keyed(api_key, "fix-me"), json={"entityID": URL})
    good = await post(client, "association", keyed(api_key, "fix-me"), json=PAIR)

    assert (bad[0], good[0]) == (400, 202)


async def test_when_the_store_cannot_be_reached_a_keyed_write_is_503_with_retry_after(
    client: Client, store: SqliteStore, api_key: dict[str, str]
) -> None:
    await post(client, "association", api_key, json=PAIR)  # the API key is cached now
    await store.close()

    status, answer, headers = await post(client, "association", keyed(api_key, "k"), json=PAIR)

    assert status == 503
    assert answer["error"]["code"] == "store_unavailable"
    assert "Retry-After" in headers


# processed once, however the first attempt ended -------------------------------------------
async def _stored_entities(store: SqliteStore) -> None:
    """The two ends of ``PAIR``, written straight to the store."""
    job = JobHeader(new_job_id(), "entity", "alice", (), 2, time.time())
    writes = [
        EntityWrite(key=(job.job_id, i), entities=(entity,))
        for i, entity in enumerate((_entity("asn", "15169", ASN), _entity("ip", "203.0.113.5", IP)))
    ]
    await store.write_batch(WriteBatch(now=time.time(), jobs=[job], entities=writes))


def _entity(type_name: str, value: str, entity_id: str) -> EntityRecord:
    return EntityRecord(id=entity_id, type=type_name, attributes={type_name: value})


async def _stored(store: SqliteStore) -> bool:
    return await store.get_association(association_id(ASN, IP)) is not None


async def _drained(queue: MemoryJobQueue) -> bool:
    return await queue.depth() == 0


@pytest.fixture
async def worker(
    lossy_queue: ConfirmLostQueue, store: SqliteStore, tmp_path: Path
) -> AsyncIterator[Worker]:
    """A worker on the lossy queue, started by the test."""
    worker = Worker(lossy_queue, store, fast_settings(tmp_path))
    yield worker
    await worker.stop(5)


@pytest.mark.parametrize("worker_starts", ["before the retry", "after the retry"])
async def test_a_retry_after_a_503_whose_message_the_broker_took_is_processed_once(
    make_client: ClientFactory,
    lossy_queue: ConfirmLostQueue,
    worker: Worker,
    store: SqliteStore,
    api_key: dict[str, str],
    worker_starts: str,
) -> None:
    """Before: the first copy is processed, the retry finds its job known and sends nothing.
    After: both copies wait in the queue; the second changes nothing."""
    front = await make_client(lossy_queue)
    await _stored_entities(store)
    lossy_queue.lost = 1

    refused = await post(front, "association", keyed(api_key, "once"), json=PAIR)
    if worker_starts == "before the retry":
        await worker.start()
        await eventually(lambda: _stored(store))
    retried = await post(front, "association", keyed(api_key, "once"), json=PAIR)
    if worker_starts == "after the retry":
        assert await lossy_queue.depth() == 2
        await worker.start()

    assert (refused[0], retried[0]) == (503, 202)
    job = await wait_for_job(store, retried[1]["jobID"])
    await eventually(lambda: _drained(lossy_queue))
    assert (job.total, job.counts) == (1, {"stored": 1})
    record = await store.get_association(association_id(ASN, IP))
    assert record is not None
    assert record.submissions == 1


async def test_retries_on_two_fronts_and_after_a_restart_answer_one_job(
    make_client: ClientFactory, api_key: dict[str, str]
) -> None:
    """Fronts share the store, so a key holds across fronts and across a front's restart."""
    one, two = await make_client(), await make_client()
    first = await post(one, "association", keyed(api_key, "fronts"), json=PAIR)
    await one.close()  # the first front is gone
    restarted = await make_client()

    answers = [
        await post(front, "association", keyed(api_key, "fronts"), json=PAIR)
        for front in (two, restarted)
    ]

    assert {a[1]["jobID"] for a in answers} == {first[1]["jobID"]}
