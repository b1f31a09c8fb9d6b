"""STIX through real HTTP: ``POST /stix`` queues a bundle as one job with every object
accounted for, a worker stores it, ``GET /entity/{id}/stix`` exports a bundle the OASIS
validator accepts and that ingests into a fresh store to the same entities and associations.

The tests marked ``ON_EACH_STORE`` run on the embedded store and on MongoDB: a bundle's job is
one entity message that carries association items too, decided by each store's batch."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiohttp.test_utils import TestClient
from stix2validator import ValidationOptions, validate_instance

from ingest_api.app import create_app
from ingest_api.idempotency import HEADER, REPLAYED_HEADER
from ingest_api.state import STORE
from schemas import AssociationItem, EntityItem, MessageKind, association_id, entity_id
from schemas.stix import convert_bundle
from tests.backends import FAST_RETRY_TIERS, MemoryQueueFactory, SqliteStoreFactory, StoreFactory
from tests.faults import ConfirmLostQueue
from tests.ingest_api.support import BASE, ClientFactory, bearer, consume, make_settings
from tests.stix_files import FILES, load, objects
from tests.workers.helpers import eventually, fast_settings, wait_for_job
from workers.queue.base import Topology
from workers.queue.memory import MemoryJobQueue
from workers.store.base import Store
from workers.store.records import Direction, SourceEntry
from workers.store.sources import SOURCE
from workers.worker import Worker

Client = TestClient[Any, Any]
REPORTER = bearer("alice", ("reporter", "user"), ("soc",))
STIX = f"{BASE}/stix"
ON_EACH_STORE = pytest.mark.parametrize(
    "store_backend", ["sqlite", pytest.param("mongodb", marks=pytest.mark.mongodb)], indirect=True
)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> StoreFactory:
    """The factory of the store under test: the embedded store's, or each in turn for a test
    marked ``ON_EACH_STORE``."""
    name = getattr(request, "param", "sqlite")
    fixture = "sqlite_store" if name == "sqlite" else "mongo_store"
    return cast(StoreFactory, request.getfixturevalue(fixture))


@pytest.fixture
async def store(store_backend: StoreFactory) -> Store:
    """The store of the front and its worker."""
    return await store_backend()


@pytest.fixture
async def worker(queue: MemoryJobQueue, store: Store, tmp_path: Path) -> AsyncIterator[None]:
    running = Worker(queue, store, fast_settings(tmp_path))
    await running.start()
    yield
    await running.stop(5)


async def post(client: Client, document: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        STIX,
        data=orjson.dumps(document),
        headers={"Content-Type": "application/stix+json;version=2.1", **REPORTER, **headers},
    )
    return response.status, await response.json()


async def test_a_bundle_is_one_job_and_every_object_is_accounted_for(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    status, body = await post(client, load("eset_moustachedbouncer_misp2stix21.json"))

    assert status == 202 and body["message"] == "acknowledged"
    objects = body["objects"]
    assert objects["total"] == 276
    assert objects["entity"] + objects["association"] + objects["notRepresented"] == 276
    assert len(body["rejected"]) == objects["notRepresented"]
    assert all(entry["error"]["code"] for entry in body["rejected"])
    message = await inbox.next()
    assert message.kind == MessageKind.ENTITY
    assert len(message.items) == body["accepted"] == body["entities"] + body["associations"]
    kinds = [type(item) for item in message.items]
    assert kinds == [EntityItem] * body["entities"] + [AssociationItem] * body["associations"]
    assert {item.job for item in message.items} == {body["jobID"]}
    assert [item.index for item in message.items] == list(range(body["accepted"]))


@ON_EACH_STORE
async def test_a_worker_stores_the_bundles_entities_and_matrix_associations(
    client: Client, store: Store, worker: None
) -> None:
    status, body = await post(client, load("eset_moustachedbouncer_misp2stix21.json"))
    assert status == 202

    job = await wait_for_job(store, body["jobID"])
    assert job.counts.get("rejected", 0) == 0
    assert job.counts["stored"] == body["accepted"]
    # file DPU.exe -downloaded-from-> smb://38.9.8.78/driverpack/DPU.exe: a File Download;
    # that URL -contains-> a MISP domain-ip object holding 38.9.8.78: a URL Host.
    url = entity_id("url", "smb://38.9.8.78/driverpack/DPU.exe")
    records, _ = await store.list_associations(url, direction=Direction.OUT)
    assert sorted((r.association_types, r.related_type) for r in records) == [
        (("File Download",), "sha256"),
        (("URL Host",), "ip"),
    ]


async def test_a_bare_array_of_objects_is_accepted(client: Client) -> None:
    status, body = await post(client, load("stix2_sco_examples_bundle.json"))
    assert status == 202
    assert body["objects"]["total"] == 82


async def test_a_bundle_of_which_nothing_is_represented_is_refused_with_every_reason(
    client: Client,
) -> None:
    bundle = {
        "type": "bundle",
        "id": "bundle--6c2c0bc5-4ec6-4c0b-9a84-1d1c57d0e22f",
        "objects": [
            {"type": "attack-pattern", "id": "attack-pattern--1", "name": "Phishing"},
            {"type": "indicator", "id": "indicator--2", "pattern": "[url:value LIKE '%x%']"},
            {"type": "relationship", "id": "relationship--3", "relationship_type": "uses",
             "source_ref": "malware--absent", "target_ref": "attack-pattern--1"},
        ],
    }  # fmt: skip
    status, body = await post(client, bundle)

    assert status == 400
    assert body["error"]["code"] == "no_valid_items"
    assert [(r["index"], r["error"]["code"]) for r in body["rejected"]] == [
        (0, "unsupported_type"),
        (1, "pattern_too_complex"),
        (2, "dangling_reference"),
    ]


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"type": "indicator"}', 400, "invalid_body"),
        (b'{"type": "bundle", "objects": []}', 400, "invalid_body"),
        (b'{"type": "bundle", "objects": {}}', 400, "invalid_body"),
    ],
)
async def test_a_body_that_is_no_bundle_is_a_400(
    client: Client, content: bytes, status: int, code: str
) -> None:
    response = await client.post(
        STIX, data=content, headers={"Content-Type": "application/json", **REPORTER}
    )
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_a_bundle_in_another_media_type_is_a_415(client: Client) -> None:
    response = await client.post(
        STIX, data=b"[]", headers={"Content-Type": "text/plain", **REPORTER}
    )
    assert response.status == 415


async def test_more_objects_than_a_bulk_holds_is_a_413(make_client: ClientFactory) -> None:
    client = await make_client(bulk_max_items=3)
    status, body = await post(client, load("oasis_poisonivy.json"))
    assert status == 413 and body["error"]["code"] == "too_many_items"


async def test_more_items_than_one_message_carries_is_a_413_naming_the_limit(
    make_client: ClientFactory,
) -> None:
    client = await make_client(publish_max_items=10)
    status, body = await post(client, load("eset_moustachedbouncer_misp2stix21.json"))
    assert status == 413
    assert "at most 10" in body["error"]["message"]


async def test_posting_stix_needs_the_reporter_role(client: Client) -> None:
    status, _ = await post(client, load("oasis_poisonivy.json"), **bearer("bob", ("user",)))
    assert status == 403


# ---- Idempotency-Key ----------------------------------------------------------------------------


async def _registered(client: Client, job_id: str) -> bool:
    return await client.app[STORE].get_job(job_id) is not None


@ON_EACH_STORE
async def test_a_bundle_retried_with_its_key_answers_the_first_job_and_queues_nothing_more(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    bundle = load("oasis_poisonivy.json")
    first = await client.post(STIX, data=orjson.dumps(bundle), headers=_keyed("pivy-1"))
    first_body = await first.json()
    await inbox.next()
    await eventually(lambda: _registered(client, first_body["jobID"]))

    again = await client.post(STIX, data=orjson.dumps(bundle), headers=_keyed("pivy-1"))

    assert first.status == again.status == 202
    assert await again.json() == first_body
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert again.headers["Location"] == f"{BASE}/jobs/{first_body['jobID']}"
    await asyncio.sleep(0.1)
    assert inbox.is_empty()


@ON_EACH_STORE
async def test_a_bundle_retried_after_a_lost_confirm_is_stored_once(
    make_client: ClientFactory, store: Store, unique_name: str, tmp_path: Path
) -> None:
    lossy = ConfirmLostQueue(Topology(base=unique_name, retry_tiers=FAST_RETRY_TIERS))
    await lossy.start()
    worker = Worker(lossy, store, fast_settings(tmp_path))
    try:
        front = await make_client(lossy)
        lossy.lost = 1
        document = orjson.dumps(load("oasis_poisonivy.json"))
        refused = await front.post(STIX, data=document, headers=_keyed("pivy-2"))
        retried = await front.post(STIX, data=document, headers=_keyed("pivy-2"))
        assert (refused.status, retried.status) == (503, 202)
        assert await lossy.depth() == 2  # the broker took both copies
        await worker.start()
        body = await retried.json()
        job = await wait_for_job(store, body["jobID"])
        await eventually(lambda: _drained(lossy))
    finally:
        await worker.stop(5)
        await lossy.close()

    assert job.total == body["accepted"] == sum(job.counts.values())
    # Each of the bundle's associations is in it once: stored with one submission, not two.
    links = convert_bundle(objects("oasis_poisonivy.json")).links
    records = [
        await store.get_association(association_id(x.entity_id, x.related_id)) for x in links
    ]
    stored = [record for record in records if record is not None]
    assert len(stored) == body["associations"]
    assert {record.submissions for record in stored} == {1}


async def _drained(queue: MemoryJobQueue) -> bool:
    return await queue.depth() == 0


async def test_the_same_key_with_another_bundle_is_a_422_and_queues_nothing(
    client: Client, queue: MemoryJobQueue
) -> None:
    first = await client.post(
        STIX, data=orjson.dumps(load("oasis_poisonivy.json")), headers=_keyed("pivy-3")
    )
    depth = await queue.depth()

    other = await client.post(
        STIX, data=orjson.dumps(load("stix2_sco_examples_bundle.json")), headers=_keyed("pivy-3")
    )

    assert (first.status, other.status) == (202, 422)
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"
    assert await queue.depth() == depth


async def test_a_refused_bundle_reserves_nothing_so_a_corrected_one_may_use_the_key(
    client: Client,
) -> None:
    nothing = [{"type": "attack-pattern", "id": "attack-pattern--1", "name": "Phishing"}]
    refused = await client.post(STIX, data=orjson.dumps(nothing), headers=_keyed("fix-me"))
    bundle = orjson.dumps(load("oasis_poisonivy.json"))
    accepted = await client.post(STIX, data=bundle, headers=_keyed("fix-me"))
    malformed = await client.post(STIX, data=bundle, headers=_keyed("with space"))

    assert (refused.status, accepted.status, malformed.status) == (400, 202, 400)
    assert (await malformed.json())["error"]["code"] == "invalid_idempotency_key"


def _keyed(key: str) -> dict[str, str]:
    return {"Content-Type": "application/stix+json;version=2.1", **REPORTER, HEADER: key}


# ---- out ----------------------------------------------------------------------------------------


def named(sources: Sequence[SourceEntry]) -> tuple[Any, ...]:
    """The named sources of a record (the users who submitted differ from store to store)."""
    return tuple(
        sorted(
            (s.name, s.confidence, s.tlp, _micro(s.first_seen), _micro(s.last_seen))
            for s in sources
            if s.kind == SOURCE
        )
    )


def _micro(seconds: float | None) -> float | None:
    """A time at the precision a STIX timestamp keeps (microseconds)."""
    return None if seconds is None else round(seconds, 6)


async def stored_graph(store: Store, ids: set[str]) -> tuple[dict[str, Any], set[Any]]:
    entities = await store.get_entities(ids)
    edges: set[Any] = set()
    for eid in ids:
        records, _ = await store.list_associations(eid, direction=Direction.OUT, limit=1000)
        edges.update(
            (r.entity_id, r.related_id, r.association_types, named(r.sources))
            for r in records
            if r.related_id in ids
        )
    return {eid: (e.type, e.attributes, named(e.sources)) for eid, e in entities.items()}, edges


@ON_EACH_STORE
async def test_an_exported_entity_validates_and_ingests_elsewhere_to_the_same_graph(
    client: Client,
    store: Store,
    worker: None,
    sqlite_store: SqliteStoreFactory,
    memory_queue: MemoryQueueFactory,
    aiohttp_client: Any,
    tmp_path: Path,
) -> None:
    status, body = await post(client, load("eset_moustachedbouncer_misp2stix21.json"))
    await wait_for_job(store, body["jobID"])
    root = entity_id("url", "http://updates.microsoft.com/jdrop.js")

    response = await client.get(f"{BASE}/entity/{root}/stix", headers=REPORTER)
    assert response.status == 200
    bundle = await response.json()
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(error) for error in results.errors]
    again = await (await client.get(f"{BASE}/entity/{root}/stix", headers=REPORTER)).json()
    assert again == bundle

    # Ingest the export into a fresh front, queue, worker and store.
    fresh_store = await sqlite_store()
    fresh_queue = await memory_queue()
    fresh = await aiohttp_client(
        create_app(make_settings(), queue=fresh_queue, store=fresh_store, manage_backends=False)
    )
    fresh_worker = Worker(fresh_queue, fresh_store, fast_settings(tmp_path / "fresh"))
    await fresh_worker.start()
    try:
        status, copied = await post(fresh, bundle)
        assert status == 202
        await wait_for_job(fresh_store, copied["jobID"])
    finally:
        await fresh_worker.stop(5)

    records, _ = await store.list_associations(root, direction=Direction.BOTH, limit=1000)
    ids = {root} | {r.entity_id for r in records} | {r.related_id for r in records}
    original = await stored_graph(store, ids)
    assert len(original[1]) == len(records) >= 2
    assert {source[0] for *_, sources in original[1] for source in sources} == {"ESET"}
    assert await stored_graph(fresh_store, ids) == original


async def test_exporting_an_absent_entity_is_a_404_and_a_malformed_id_a_400(
    client: Client,
) -> None:
    absent = entity_id("ip", "198.51.100.9")
    assert (await client.get(f"{BASE}/entity/{absent}/stix", headers=REPORTER)).status == 404
    assert (await client.get(f"{BASE}/entity/ip-12/stix", headers=REPORTER)).status == 400


async def test_mangled_bundles_from_every_publisher_never_get_a_5xx(client: Client) -> None:
    # Held-out publishers write what these files do, and worse: fields of the wrong type,
    # missing, or taken from another object. Every answer is a 202 or a 4xx with reasons.
    chooser = random.Random(16)
    values: list[Any] = [None, 7, -1, 2**63, 1.5, True, "", "x" * 300, [], {}, ["a"], {"a": 1}]
    for name in FILES:
        source = objects(name)
        for _ in range(8):
            mangled = []
            for obj in chooser.sample(source, min(len(source), 60)):
                obj = dict(obj)
                for key in chooser.sample(sorted(obj), min(len(obj), 2)):
                    obj[key] = chooser.choice([*values, *source[:3]])
                mangled.append(obj)
            status, body = await post(client, mangled)
            assert status in (202, 400), body
            if status == 202:
                assert body["objects"]["total"] == len(mangled)
            else:
                assert body["error"]["code"] in ("no_valid_items", "invalid_body")
