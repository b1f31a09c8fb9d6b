"""Read endpoints through real HTTP: entities, associations from either end with filters and
pages, job status, types and definitions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest_api.app import create_app
from schemas import association_id, entity_id
from schemas.jobids import new_job_id
from tests.backends import SqliteStoreFactory
from tests.ingest_api.support import ASN, BASE, DOMAIN, FILE, IP, IP_2, bearer, make_settings
from tests.workers.helpers import fast_settings, wait_for_job
from workers.queue.memory import MemoryJobQueue
from workers.store.records import (
    EdgeWrite,
    EntityRecord,
    EntityWrite,
    JobHeader,
    Outcome,
    PresetOutcome,
    WaitingItem,
    WriteBatch,
)
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

Client = TestClient[Any, Any]
USER = bearer("carol", ("user",))
ADMIN = bearer("root", ("admin",))


def _record(type_name: str, value: str) -> EntityRecord:
    return EntityRecord(
        id=entity_id(type_name, value), type=type_name, attributes={type_name: value}
    )


def _edge(index: int, job: str, primary: str, related: str, name: str) -> EdgeWrite:
    return EdgeWrite(
        key=(job, index),
        association_id=association_id(primary, related),
        entity_id=primary,
        related_id=related,
        entity_type=primary.rsplit("-", 1)[0],
        related_type=related.rsplit("-", 1)[0],
        association_type=name,
        file_action=name.startswith("File "),
        created_by="alice",
    )


async def write(
    store: SqliteStore,
    entities: Sequence[tuple[str, str]] = (),
    edges: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Store ``entities`` (type, value) and ``edges`` (primary, related, type name)."""
    job = new_job_id()
    batch = WriteBatch(now=time.time())
    if entities:
        batch.entities.append(
            EntityWrite(key=(job, 0), entities=tuple(_record(t, v) for t, v in entities))
        )
    batch.edges.extend(_edge(i + 1, job, *edge) for i, edge in enumerate(edges))
    await store.write_batch(batch)


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status
    body: dict[str, Any] = await response.json()
    assert body["error"]["code"] == code
    assert response.headers["x-error-id"] == body["error"]["errorID"]
    return body


async def associations(client: Client, eid: str, **query: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/entity/{eid}/associations", params=query, headers=USER)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


# ---- entities ---------------------------------------------------------------------------------


async def test_a_stored_entity_is_returned_with_its_attributes(
    client: Client, store: SqliteStore
) -> None:
    await write(store, [("domain", "example.com")])
    response = await client.get(f"{BASE}/entity/{DOMAIN}", headers=USER)
    assert response.status == 200
    body = await response.json()
    assert body["id"] == DOMAIN
    assert body["type"] == "domain"
    assert body["attributes"] == {"domain": "example.com"}
    assert body["createdAt"] and body["lastSeen"]


async def test_an_entity_is_found_by_its_value_as_written_anywhere(
    client: Client, store: SqliteStore
) -> None:
    await write(store, [("domain", "example.com")])
    for written in ("example.com", "EXAMPLE[.]com", "example(.)COM."):
        response = await client.get(
            f"{BASE}/entity", params={"type": "domain", "value": written}, headers=USER
        )
        assert response.status == 200, await response.text()
        assert (await response.json())["id"] == DOMAIN


async def test_a_lookup_by_value_says_what_is_missing_or_wrong(client: Client) -> None:
    response = await client.get(f"{BASE}/entity", params={"type": "ip"}, headers=USER)
    await assert_error(response, 400, "invalid_query")
    response = await client.get(
        f"{BASE}/entity", params={"type": "ip", "value": "10.0.0.1"}, headers=USER
    )
    body = await assert_error(response, 400, "invalid_entity")
    assert "private" in body["error"]["message"]
    response = await client.get(
        f"{BASE}/entity", params={"type": "Address", "value": "8.8.8.8"}, headers=USER
    )
    body = await assert_error(response, 400, "unknown_entity_type")
    assert "its entity types are ip" in body["error"]["message"]
    response = await client.get(
        f"{BASE}/entity", params={"type": "ip", "value": "8.8.8.8"}, headers=USER
    )
    body = await assert_error(response, 404, "entity_not_found")
    assert entity_id("ip", "8.8.8.8") in body["error"]["message"]


async def test_an_absent_entity_is_a_404_entity_not_found(client: Client) -> None:
    response = await client.get(f"{BASE}/entity/{DOMAIN}", headers=USER)
    await assert_error(response, 404, "entity_not_found")


async def test_a_malformed_entity_id_is_a_400(client: Client) -> None:
    response = await client.get(f"{BASE}/entity/domain-XYZ", headers=USER)
    await assert_error(response, 400, "invalid_entity_id")


async def test_reading_needs_credentials_and_the_user_role(client: Client) -> None:
    await assert_error(await client.get(f"{BASE}/entity/{DOMAIN}"), 401, "unauthorized")
    reporter = bearer("alice", ("reporter",))
    response = await client.get(f"{BASE}/entity/{DOMAIN}", headers=reporter)
    await assert_error(response, 403, "forbidden")


# ---- associations -----------------------------------------------------------------------------


async def test_an_association_is_readable_from_both_ends(
    client: Client, store: SqliteStore
) -> None:
    await write(store, [("asn", "15169"), ("ip", "203.0.113.5")], [(ASN, IP, "ASN to Address")])

    [out] = (await associations(client, ASN))["items"]
    assert out["direction"] == "out"
    assert out["otherEntity"] == {"id": IP, "type": "ip", "summary": "203.0.113.5"}
    assert out["associationName"] == "ASN to Address"
    assert out["entityID"] == ASN and out["relatedEntityID"] == IP
    assert out["submissions"] == 1 and out["fileAction"] is False

    [back] = (await associations(client, IP))["items"]
    assert back["direction"] == "in"
    assert back["otherEntity"] == {"id": ASN, "type": "asn", "summary": "15169"}
    assert back["id"] == out["id"] == association_id(ASN, IP)


async def test_the_summary_is_null_when_the_other_entity_is_not_stored(
    client: Client, store: SqliteStore
) -> None:
    await write(store, edges=[(ASN, IP, "ASN to Address")])
    [item] = (await associations(client, ASN))["items"]
    assert item["otherEntity"]["summary"] is None


async def test_the_direction_filter_keeps_one_end(client: Client, store: SqliteStore) -> None:
    await write(store, edges=[(ASN, IP, "ASN to Address"), (IP, DOMAIN, "DNS PTR Record")])

    out = (await associations(client, IP, direction="out"))["items"]
    assert [(i["direction"], i["otherEntity"]["id"]) for i in out] == [("out", DOMAIN)]
    incoming = (await associations(client, IP, direction="in"))["items"]
    assert [(i["direction"], i["otherEntity"]["id"]) for i in incoming] == [("in", ASN)]
    both = (await associations(client, IP))["items"]
    assert {i["otherEntity"]["id"] for i in both} == {ASN, DOMAIN}


async def test_an_unknown_direction_is_a_400(client: Client) -> None:
    response = await client.get(
        f"{BASE}/entity/{IP}/associations", params={"direction": "sideways"}, headers=USER
    )
    await assert_error(response, 400, "invalid_direction")


async def test_the_type_filter_matches_a_known_type_in_any_case(
    client: Client, store: SqliteStore
) -> None:
    await write(store, edges=[(FILE, DOMAIN, "File DNS Query"), (FILE, IP, "File Traffic")])
    items = (await associations(client, FILE, associationType="file traffic"))["items"]
    assert [i["otherEntity"]["id"] for i in items] == [IP]


async def test_a_name_no_type_has_filters_as_a_context_relationship_name(
    client: Client, store: SqliteStore
) -> None:
    await write(store, edges=[(FILE, DOMAIN, "File DNS Query")])
    items = (await associations(client, FILE, associationType="No Such Type"))["items"]
    assert items == []  # context relationship names are free: nothing is named so here


async def test_an_unusable_association_type_filter_is_a_400(client: Client) -> None:
    response = await client.get(
        f"{BASE}/entity/{FILE}/associations",
        params={"associationType": "x" * 200},
        headers=USER,
    )
    await assert_error(response, 400, "unknown_association_type")


async def test_a_pair_with_several_types_lists_every_name(
    client: Client, store: SqliteStore
) -> None:
    await write(store, edges=[(FILE, DOMAIN, "File DNS Query"), (FILE, DOMAIN, "File Traffic")])
    [item] = (await associations(client, DOMAIN))["items"]
    assert sorted(item["associationNames"]) == ["File DNS Query", "File Traffic"]
    assert item["associationName"] in item["associationNames"]
    assert item["fileAction"] is True


async def test_250_edges_come_in_three_pages_of_at_most_100_without_repeats(
    client: Client, store: SqliteStore
) -> None:
    ips = [entity_id("ip", f"203.0.113.{n}") for n in range(250)]
    await write(store, edges=[(ip, DOMAIN, "DNS PTR Record") for ip in ips])

    pages: list[list[str]] = []
    query: dict[str, str] = {"limit": "100"}
    while True:
        body = await associations(client, DOMAIN, **query)
        pages.append([item["otherEntity"]["id"] for item in body["items"]])
        if body["nextCursor"] is None:
            break
        query["cursor"] = body["nextCursor"]
        assert len(pages) < 5, "pagination does not end"

    assert [len(page) for page in pages] == [100, 100, 50]
    seen = [eid for page in pages for eid in page]
    assert len(set(seen)) == 250
    assert set(seen) == set(ips)


async def test_the_default_page_holds_100_items(client: Client, store: SqliteStore) -> None:
    ips = [entity_id("ip", f"198.51.100.{n}") for n in range(101)]
    await write(store, edges=[(ip, DOMAIN, "DNS PTR Record") for ip in ips])
    body = await associations(client, DOMAIN)
    assert len(body["items"]) == 100
    assert body["nextCursor"] is not None


@pytest.mark.parametrize("limit", ["0", "1001", "-5", "ten"])
async def test_a_limit_outside_1_to_1000_is_a_400(client: Client, limit: str) -> None:
    response = await client.get(
        f"{BASE}/entity/{DOMAIN}/associations", params={"limit": limit}, headers=USER
    )
    body = await assert_error(response, 400, "invalid_limit")
    assert "1000" in body["error"]["message"]


async def test_a_malformed_cursor_is_a_400(client: Client) -> None:
    response = await client.get(
        f"{BASE}/entity/{DOMAIN}/associations", params={"cursor": "not-a-cursor"}, headers=USER
    )
    await assert_error(response, 400, "invalid_cursor")


# ---- jobs -------------------------------------------------------------------------------------


async def _job_of_alice(store: SqliteStore) -> str:
    job = new_job_id()
    now = time.time()
    header = JobHeader(
        job_id=job, kind="association", owner="alice", groups=(), total=3, created_at=now
    )
    batch = WriteBatch(now=now, jobs=[header])
    batch.edges.append(_edge(0, job, ASN, IP, "ASN to Address"))
    batch.preset.append(
        PresetOutcome((job, 2), Outcome.REJECTED, "entity_not_found", "no entity " + DOMAIN)
    )
    batch.waiting.append(WaitingItem((job, 1), (DOMAIN,), now))
    await store.write_batch(batch)
    return job


async def test_the_owner_sees_the_progress_of_a_job(client: Client, store: SqliteStore) -> None:
    job = await _job_of_alice(store)
    response = await client.get(f"{BASE}/jobs/{job}", headers=bearer("alice", ("reporter",)))
    assert response.status == 200
    body = await response.json()
    assert body["jobID"] == job
    assert body["status"] == "processing"
    assert body["total"] == 3
    assert body["counts"]["stored"] == 1 and body["counts"]["rejected"] == 1
    assert body["errors"] == [
        {"index": 2, "code": "entity_not_found", "message": "no entity " + DOMAIN}
    ]
    assert (body["waiting"], body["waitingFor"]) == (1, [DOMAIN])


async def test_a_job_with_a_failed_item_is_failed_with_the_reason(
    client: Client, store: SqliteStore
) -> None:
    job = new_job_id()
    now = time.time()
    header = JobHeader(
        job_id=job, kind="association", owner="alice", groups=(), total=2, created_at=now
    )
    batch = WriteBatch(now=now, jobs=[header])
    batch.edges.append(_edge(0, job, ASN, IP, "ASN to Address"))
    batch.preset.append(PresetOutcome((job, 1), Outcome.FAILED, "handler_error", "boom"))
    await store.write_batch(batch)

    response = await client.get(f"{BASE}/jobs/{job}", headers=bearer("alice", ("reporter",)))

    body = await response.json()
    assert body["status"] == "failed"
    assert (body["counts"]["stored"], body["counts"]["failed"]) == (1, 1)
    assert body["errors"] == [{"index": 1, "code": "handler_error", "message": "boom"}]
    assert (body["waiting"], body["waitingFor"]) == (0, [])


async def test_another_users_job_is_a_404_as_if_it_did_not_exist(
    client: Client, store: SqliteStore
) -> None:
    job = await _job_of_alice(store)
    response = await client.get(f"{BASE}/jobs/{job}", headers=bearer("mallory", ("user",)))
    await assert_error(response, 404, "job_not_found")


async def test_an_admin_sees_any_job(client: Client, store: SqliteStore) -> None:
    job = await _job_of_alice(store)
    response = await client.get(f"{BASE}/jobs/{job}", headers=ADMIN)
    assert response.status == 200
    assert (await response.json())["jobID"] == job


async def test_a_caller_lists_their_own_jobs_newest_first_and_an_admin_everyones(
    client: Client, store: SqliteStore
) -> None:
    older, newer = await _job_of_alice(store), await _job_of_alice(store)
    bob = new_job_id()
    await store.register_jobs([JobHeader(bob, "entity", "bob", (), 1, time.time())])
    response = await client.get(f"{BASE}/jobs", headers=bearer("alice", ("reporter",)))
    assert response.status == 200
    body = await response.json()
    assert [job["jobID"] for job in body["items"]] == [newer, older]
    assert [job["counts"]["stored"] for job in body["items"]] == [0, 1]  # then a duplicate
    assert body["nextCursor"] is None
    page = await client.get(f"{BASE}/jobs", params={"limit": "1"}, headers=ADMIN)
    first = await page.json()
    assert [job["jobID"] for job in first["items"]] == [bob]
    rest = await client.get(f"{BASE}/jobs", params={"cursor": first["nextCursor"]}, headers=ADMIN)
    assert [job["jobID"] for job in (await rest.json())["items"]] == [newer, older]
    response = await client.get(f"{BASE}/jobs", params={"cursor": "x"}, headers=ADMIN)
    await assert_error(response, 400, "invalid_cursor")


async def test_an_unknown_job_is_a_404_and_a_malformed_id_a_400(client: Client) -> None:
    response = await client.get(f"{BASE}/jobs/{new_job_id()}", headers=ADMIN)
    await assert_error(response, 404, "job_not_found")
    response = await client.get(f"{BASE}/jobs/not-a-job", headers=ADMIN)
    await assert_error(response, 400, "invalid_job_id")


async def test_a_job_accepted_by_the_front_is_visible_to_its_submitter(client: Client) -> None:
    alice = bearer("alice", ("reporter",))
    response = await client.post(
        f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP_2}, headers=alice
    )
    assert response.status == 202
    location = response.headers["Location"]
    for _ in range(100):  # the front registers accepted jobs in the background
        status = await client.get(location, headers=alice)
        if status.status == 200:
            break
        await asyncio.sleep(0.02)
    assert status.status == 200
    assert (await status.json())["status"] == "queued"


# ---- vocabulary -------------------------------------------------------------------------------


async def test_the_association_types_include_the_defaults(client: Client) -> None:
    response = await client.get(f"{BASE}/association-types", headers=USER)
    assert response.status == 200
    types = {t["name"]: t for t in await response.json()}
    assert types["URL Host"] == {
        "name": "URL Host",
        "primary": "URL",
        "nonPrimary": ["Address", "Host"],
        "fileAction": False,
        "custom": False,
    }
    assert types["File Traffic"]["fileAction"] is True


async def test_the_definitions_list_the_catalogue(client: Client) -> None:
    response = await client.get(f"{BASE}/definitions", headers=USER)
    assert response.status == 200
    definitions = {d["type"]: d for d in await response.json()}
    assert definitions["domain"]["kind"] == "Host"
    assert definitions["domain"]["dataType"] == "fqdn"
    assert definitions["sha256"]["kind"] == "File"


async def test_the_openapi_document_describes_every_read_and_admin_path(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    paths = document["paths"]
    expected = {
        f"{BASE}/entity/{{id}}": "get",
        f"{BASE}/entity/{{id}}/associations": "get",
        f"{BASE}/jobs/{{jobID}}": "get",
        f"{BASE}/association-types": "get",
        f"{BASE}/definitions": "get",
    }
    for path, method in expected.items():
        assert method in paths[path], path
    schemas = document["components"]["schemas"]
    assert {"EntityResponse", "AssociationListResponse", "JobStatusResponse"} <= set(schemas)


async def test_an_entity_with_a_new_nested_child_counts_the_child_and_its_link(
    client: Client, store: SqliteStore, queue: MemoryJobQueue, tmp_path: Path
) -> None:
    worker = Worker(queue, store, fast_settings(tmp_path))
    await worker.start()
    alice = bearer("alice", ("reporter",))
    try:
        known = {"type": "asn", "attributes": {"asn": "AS64500"}}
        first = await client.post(f"{BASE}/entity", json=known, headers=alice)
        await wait_for_job(store, (await first.json())["jobID"])
        nested = {**known, "associations": [{"type": "ip", "attributes": {"ip": "192.0.2.77"}}]}
        response = await client.post(f"{BASE}/entity", json=nested, headers=alice)
        await wait_for_job(store, (await response.json())["jobID"])
        status = await client.get(response.headers["Location"], headers=alice)
    finally:
        await worker.stop(5)

    body = await status.json()
    assert (body["status"], body["total"]) == ("done", 3)
    counts = {name: n for name, n in body["counts"].items() if n}
    assert counts == {"duplicate": 1, "stored": 2}  # the parent; the child and the link


class SlowRegistrationStore(SqliteStore):
    """The embedded store, whose registration of accepted jobs waits for ``registered``."""

    registered: asyncio.Event

    async def register_jobs(self, jobs: Sequence[JobHeader]) -> None:
        await self.registered.wait()
        await super().register_jobs(jobs)


async def test_a_job_is_visible_as_queued_at_once_after_its_202(
    sqlite_store: SqliteStoreFactory, queue: MemoryJobQueue, aiohttp_client: Any
) -> None:
    store = await sqlite_store("slow.sqlite3", kind=SlowRegistrationStore)
    store.registered = asyncio.Event()
    app = create_app(make_settings(), queue=queue, store=store, manage_backends=False)
    client = await aiohttp_client(app)
    alice = bearer("alice", ("reporter",))
    response = await client.post(
        f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP_2}, headers=alice
    )

    status = await client.get(response.headers["Location"], headers=alice)
    other = await client.get(response.headers["Location"], headers=bearer("bob", ("user",)))
    store.registered.set()

    assert status.status == 200
    body = await status.json()
    assert (body["status"], body["total"], body["kind"]) == ("queued", 1, "association")
    assert other.status == 404
