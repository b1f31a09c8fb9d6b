"""Accepted writes: a 202 with the job ID once the job is queued, with the right items.

One write goes through the real RabbitMQ (what a 202 promises is a confirmed message there);
the others check what the front queues, on the in-process queue."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from ingest_api.bodies import BulkChunk
from ingest_api.bulk_checks import AssociationChunkChecker
from schemas import AssociationItem, EntityItem, MessageKind, entity_id
from tests.backends import RabbitQueueFactory
from tests.ingest_api.support import (
    ASN,
    BASE,
    DOMAIN,
    FILE,
    IP,
    IP_2,
    URL,
    ClientFactory,
    bearer,
    consume,
)
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore

Client = TestClient[Any, Any]


@pytest.mark.rabbitmq
async def test_an_association_queued_in_rabbitmq_is_acknowledged_with_exactly_message_and_job_id(
    rabbit_queue: RabbitQueueFactory, make_client: ClientFactory, api_key: dict[str, str]
) -> None:
    rabbit = await rabbit_queue()
    client = await make_client(rabbit)
    inbox = await consume(rabbit)
    response = await client.post(
        f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP}, headers=api_key
    )
    assert response.status == 202
    body = await response.json()
    assert body == {"message": "acknowledged", "jobID": body["jobID"]}
    assert response.headers["Location"] == f"{BASE}/jobs/{body['jobID']}"
    message = await inbox.next()
    assert message.kind == MessageKind.ASSOCIATION
    (item,) = message.items
    assert isinstance(item, AssociationItem)
    assert (item.job, item.index, item.total) == (body["jobID"], 0, 1)
    assert (item.entity_id, item.related_id) == (ASN, IP)
    assert item.association_type == "ASN to Address"
    assert (item.user, item.groups) == ("alice", ("soc",))
    assert abs(item.submitted_at - time.time()) < 60


async def test_a_named_type_is_queued_under_its_canonical_name(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/association",
        json={"entityID": FILE, "relatedEntityID": DOMAIN, "associationType": "file dns QUERY"},
        headers=bearer(),
    )
    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, AssociationItem)
    assert item.association_type == "File DNS Query"


async def test_a_delete_without_type_is_queued_for_every_type_of_the_pair(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.delete(
        f"{BASE}/association", json={"entityID": URL, "relatedEntityID": DOMAIN}, headers=bearer()
    )
    assert response.status == 202
    message = await inbox.next()
    assert message.kind == MessageKind.ASSOCIATION_DELETE
    (item,) = message.items
    assert isinstance(item, AssociationItem)
    assert (item.entity_id, item.related_id, item.association_type) == (URL, DOMAIN, None)


async def test_a_nested_entity_yields_its_id_children_and_oriented_links(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    body = {
        "type": "domain",
        "attributes": {"domain": "WWW.Example.COM.", "registrar": "x"},
        "reputation": -2,
        "tags": ["phishing"],
        "visibleBy": ["soc"],
        "associations": [
            {  # Address -> Host (DNS PTR Record): the child is the primary end
                "mode": "aggregation",
                "type": "ip",
                "attributes": {"ip": "203.0.113.5"},
                "associations": [
                    {"type": "asn", "attributes": {"asn": "AS15169"}},  # ASN -> Address
                ],
            },
            {"type": "email-address", "attributes": {"email-address": "B@X.org"}},
        ],
    }
    response = await client.post(f"{BASE}/entity", json=body, headers=bearer())
    assert response.status == 202
    answer = await response.json()
    domain = entity_id("domain", "www.example.com")
    assert answer == {"message": "acknowledged", "jobID": answer["jobID"], "entityID": domain}
    message = await inbox.next()
    assert message.kind == MessageKind.ENTITY
    (item,) = message.items
    assert isinstance(item, EntityItem)
    assert item.entity.id == domain
    assert item.entity.attributes["domain"] == "www.example.com"
    assert (item.entity.reputation, item.entity.tags) == (-2, ("phishing",))
    email = entity_id("email-address", "b@x.org")
    assert [child.id for child in item.children] == [IP, ASN, email]
    links = {(link.entity_id, link.related_id, link.association_type) for link in item.links}
    assert links == {
        (IP, domain, "DNS PTR Record"),
        (ASN, IP, "ASN to Address"),
        (domain, email, "Domain Registrant Email"),
    }
    # The job counts every entity and link: the entity, then its 3 children and 3 links.
    assert (item.index, item.parts_from, item.total) == (0, 1, 7)


async def test_a_nested_child_may_name_its_association_type(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    child: dict[str, Any] = {"type": "domain", "attributes": {"domain": "example.com"}}
    body: dict[str, Any] = {
        "type": "md5",
        "attributes": {"md5": "d41d8cd98f00b204e9800998ecf8427e"},
        "associations": [child],  # File -> Host fits two types: ambiguous without a name
    }
    refused = await client.post(f"{BASE}/entity", json=body, headers=bearer())
    assert refused.status == 400
    assert (await refused.json())["error"]["code"] == "ambiguous_association_type"

    body["associations"] = [{**child, "associationType": "file dns query"}]
    response = await client.post(f"{BASE}/entity", json=body, headers=bearer())

    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, EntityItem)
    assert [(lk.entity_id, lk.related_id, lk.association_type) for lk in item.links] == [
        (FILE, DOMAIN, "File DNS Query")
    ]


async def test_a_url_with_a_nested_file_is_queued_as_a_file_download(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    body = {
        "type": "url",
        "attributes": {"url": "http://example.com/a"},
        "associations": [
            {"type": "md5", "attributes": {"md5": "d41d8cd98f00b204e9800998ecf8427e"}}
        ],
    }
    response = await client.post(f"{BASE}/entity", json=body, headers=bearer())

    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, EntityItem)
    assert [(lk.entity_id, lk.related_id, lk.association_type) for lk in item.links] == [
        (URL, FILE, "File Download")
    ]


async def test_a_bulk_in_ndjson_queues_only_the_valid_lines_and_reports_the_others(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    lines = [
        orjson.dumps({"entityID": ASN, "relatedEntityID": IP}),
        b"{not json",
        orjson.dumps({"entityID": IP, "relatedEntityID": ASN}),  # wrong direction
        b"",  # a blank line is no item, but it is a line: indexes are line numbers
        orjson.dumps({"entityID": ASN, "relatedEntityID": IP_2}),
        b"  ",
        orjson.dumps({"entityID": IP, "relatedEntityID": ASN}),
    ]
    response = await client.post(
        f"{BASE}/associations",
        data=b"\n".join(lines) + b"\n",
        headers={**bearer(), "Content-Type": "application/x-ndjson"},
    )
    assert response.status == 202
    body = await response.json()
    assert body["message"] == "acknowledged"
    assert body["accepted"] == 2
    assert [(r["index"], r["error"]["code"]) for r in body["rejected"]] == [
        (1, "invalid_json"),
        (2, "association_not_allowed"),
        (6, "association_not_allowed"),
    ]
    assert body["rejected"][1]["error"]["detail"] == (
        "Address -> ASN: no type allows it; ASN -> Address is ASN to Address"
    )
    items = await inbox.items(2)
    assert [(i.index, i.total, i.related_id) for i in items] == [(0, 2, IP), (4, 2, IP_2)]
    assert {i.job for i in items} == {body["jobID"]}


async def test_a_bulk_as_a_json_array_queues_only_the_valid_items(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/associations",
        json=[
            {"entityID": IP, "relatedEntityID": IP},
            {"entityID": URL, "relatedEntityID": DOMAIN},
            "not an object",
        ],
        headers=bearer(),
    )
    assert response.status == 202
    body = await response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["error"]["code"]) for r in body["rejected"]] == [
        (0, "self_association"),
        (2, "invalid_body"),
    ]
    (item,) = await inbox.items(1)
    assert (item.index, item.entity_id, item.association_type) == (1, URL, "URL Host")


async def test_a_request_sent_while_a_large_bulk_is_checked_is_answered_before_it_is_done(
    client: Client, queue: MemoryJobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk is checked a chunk at a time and the front serves other requests in between: a
    probe sent once the checking of a 10,000-item bulk has begun is answered before its last
    chunk is checked, and the bulk is still wholly queued."""
    inbox = await consume(queue)
    original = AssociationChunkChecker.check
    probe: asyncio.Task[int] | None = None
    probe_answered: list[bool] = []  # before each chunk is checked

    async def health() -> int:
        response = await client.get("/healthz")
        return response.status

    def check(self: AssociationChunkChecker, chunk: BulkChunk) -> Any:
        nonlocal probe
        if probe is None:
            probe = asyncio.get_running_loop().create_task(health())
        probe_answered.append(probe.done())
        return original(self, chunk)

    monkeypatch.setattr(AssociationChunkChecker, "check", check)
    body = [{"entityID": ASN, "relatedEntityID": f"ip-{n:064x}"} for n in range(10_000)]
    response = await client.post(f"{BASE}/associations", json=body, headers=bearer())

    assert response.status == 202
    assert (await response.json())["accepted"] == 10_000
    assert probe is not None and await probe == 200
    assert len(probe_answered) > 1 and not probe_answered[0]
    assert probe_answered[-1], "the probe waited for the whole bulk to be checked"
    items = await inbox.items(10_000)
    assert [item.index for item in items] == list(range(10_000))


async def test_concurrent_bulks_are_each_answered_when_some_are_refused_midway(
    make_client: ClientFactory, queue: MemoryJobQueue
) -> None:
    """Bulks are parsed and checked one after the other; one refused midway (too many items,
    as a JSON array or streamed, or not JSON) lets the next one through."""
    client = await make_client(bulk_max_items=300)
    inbox = await consume(queue)

    def items(count: int, first: int = 0) -> list[dict[str, str]]:
        return [
            {"entityID": ASN, "relatedEntityID": f"ip-{n:064x}"}
            for n in range(first, first + count)
        ]

    def ndjson(values: list[dict[str, str]]) -> bytes:
        return b"\n".join(orjson.dumps(value) for value in values)

    ndjson_headers = {**bearer(), "Content-Type": "application/x-ndjson"}
    requests = [
        client.post(f"{BASE}/associations", json=items(300, 0), headers=bearer()),
        client.post(f"{BASE}/associations", json=items(301), headers=bearer()),
        client.post(f"{BASE}/associations", data=ndjson(items(301)), headers=ndjson_headers),
        client.post(
            f"{BASE}/associations",
            data=orjson.dumps(items(290))[:-1] + b",",
            headers={**bearer(), "Content-Type": "application/json"},
        ),
        client.post(f"{BASE}/associations", data=ndjson(items(300, 300)), headers=ndjson_headers),
        client.post(f"{BASE}/associations", json=items(300, 600), headers=bearer()),
    ]
    responses = await asyncio.gather(*requests)

    assert [r.status for r in responses] == [202, 413, 413, 400, 202, 202]
    assert [(await r.json())["error"]["code"] for r in responses[1:4]] == [
        "too_many_items",
        "too_many_items",
        "invalid_json",
    ]
    queued = await inbox.items(900)
    assert sorted(int(item.related_id[3:], 16) for item in queued) == list(range(900))


async def test_a_bulk_refused_while_its_items_are_checked_lets_the_next_bulk_through(
    make_client: ClientFactory, queue: MemoryJobQueue
) -> None:
    client = await make_client(publish_max_bytes=1024)
    inbox = await consume(queue)
    entities = [{"type": "asn", "attributes": {"asn": f"AS{n + 1}"}} for n in range(600)]
    refused = await client.post(f"{BASE}/entities", json=entities, headers=bearer())
    assert refused.status == 413
    assert (await refused.json())["error"]["code"] == "too_large_for_one_message"

    accepted = await asyncio.wait_for(
        client.post(
            f"{BASE}/associations",
            json=[{"entityID": ASN, "relatedEntityID": IP}],
            headers=bearer(),
        ),
        timeout=30,
    )
    assert accepted.status == 202
    (item,) = await inbox.items(1)
    assert item.related_id == IP


async def test_a_bulk_of_entities_queues_one_item_per_valid_entity(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/entities",
        json=[
            {"type": "ip", "attributes": {"ip": "10.0.0.1"}},  # private: refused
            {"type": "ip", "attributes": {"ip": "203.0.113.5"}},
        ],
        headers=bearer(),
    )
    assert response.status == 202
    body = await response.json()
    assert (body["accepted"], body["rejected"][0]["index"]) == (1, 0)
    assert body["rejected"][0]["error"]["code"] == "invalid_entity"
    (item,) = await inbox.items(1)
    assert isinstance(item, EntityItem)
    assert (item.index, item.entity.id) == (1, IP)


async def test_a_bulk_of_nested_entities_counts_every_entity_and_link_in_its_job(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/entities",
        json=[
            {"type": "asn", "attributes": {"asn": "AS15169"}, "associations": _ip_children(1)},
            {"type": "ip", "attributes": {"ip": "10.0.0.1"}},  # private: refused
            {"type": "asn", "attributes": {"asn": "AS13335"}, "associations": _ip_children(2)},
        ],
        headers=bearer(),
    )

    assert response.status == 202
    assert (await response.json())["accepted"] == 2
    first, second = await inbox.items(2)
    # Request positions keep their index; children and links take the indexes after them.
    assert (first.index, first.parts_from, second.index, second.parts_from) == (0, 3, 2, 5)
    assert first.total == second.total == 2 + 2 + 4


async def test_a_bulk_with_no_valid_item_is_refused_with_every_error(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/associations",
        json=[{"entityID": IP}, {"entityID": IP, "relatedEntityID": IP}],
        headers=bearer(),
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "no_valid_items"
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert body["accepted"] == 0
    assert inbox.is_empty()


async def test_an_accepted_job_is_registered_as_queued(client: Client, store: SqliteStore) -> None:
    response = await client.post(
        f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP}, headers=bearer()
    )
    job_id = (await response.json())["jobID"]
    for _ in range(100):
        job = await store.get_job(job_id)
        if job is not None:
            break
        await asyncio.sleep(0.02)
    assert job is not None
    assert (job.status, job.owner, job.total, job.kind) == ("queued", "alice", 1, "association")


def _ip_children(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "ip", "attributes": {"ip": f"203.0.{n // 250}.{n % 250 + 1}"}}
        for n in range(count)
    ]


async def test_entities_that_expand_beyond_one_message_are_a_413_naming_the_limit(
    make_client: ClientFactory, queue: MemoryJobQueue
) -> None:
    # Nested children grow 8-fold as queue items; the body is within its limit, the items not.
    client = await make_client(publish_max_bytes=64 * 1024)
    body = [
        {"type": "asn", "attributes": {"asn": f"AS{n + 1}"}, "associations": _ip_children(100)}
        for n in range(3)
    ]
    assert len(orjson.dumps(body)) < 64 * 1024

    response = await client.post(f"{BASE}/entities", json=body, headers=bearer())

    assert response.status == 413
    error = (await response.json())["error"]
    assert error["code"] == "too_large_for_one_message"
    assert "65536 bytes" in error["message"]
    assert await queue.depth() == 0


async def test_a_single_entity_that_expands_beyond_one_message_is_a_413(
    make_client: ClientFactory, queue: MemoryJobQueue
) -> None:
    client = await make_client(publish_max_bytes=16 * 1024)
    body = {"type": "asn", "attributes": {"asn": "AS15169"}, "associations": _ip_children(200)}

    response = await client.post(f"{BASE}/entity", json=body, headers=bearer())

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large_for_one_message"
    assert await queue.depth() == 0
