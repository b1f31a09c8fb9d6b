"""Context associations and provenance at the front (SPEC §2, §5): what a 202 queues."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from schemas import AssociationItem, EntityItem, Provenance, entity_id
from tests.ingest_api.support import ASN, BASE, DOMAIN, IP, MALWARE, bearer, consume
from workers.queue.memory import MemoryJobQueue

Client = TestClient[Any, Any]
FAMILY = entity_id("malware-family", "qakbot")
FIRST = "2025-12-30T13:56:31Z"
LAST = "2026-03-12T00:00:00+00:00"


def seconds(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


async def test_an_address_to_malware_link_is_queued_with_its_free_name_in_lower_case(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/association",
        json={"entityID": IP, "relatedEntityID": MALWARE, "associationType": "C2-Of"},
        headers=bearer(),
    )
    assert response.status == 202, await response.text()
    (item,) = (await inbox.next()).items
    assert isinstance(item, AssociationItem)
    assert (item.entity_id, item.related_id, item.association_type) == (IP, MALWARE, "c2-of")
    assert item.provenance is None


async def test_the_reverse_context_link_is_accepted_too_and_named_associated(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.post(
        f"{BASE}/association", json={"entityID": MALWARE, "relatedEntityID": IP}, headers=bearer()
    )
    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, AssociationItem)
    assert (item.entity_id, item.related_id, item.association_type) == (MALWARE, IP, "associated")


async def test_kinded_pairs_are_refused_exactly_as_before(client: Client) -> None:
    response = await client.post(
        f"{BASE}/association", json={"entityID": IP, "relatedEntityID": ASN}, headers=bearer()
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["errCode"]) == ("association_not_allowed", "0x1001")
    assert error["message"] == "Association cannot be applied to the indicator types."


async def test_a_matrix_type_name_on_a_context_pair_is_refused_saying_why(client: Client) -> None:
    response = await client.post(
        f"{BASE}/association",
        json={"entityID": IP, "relatedEntityID": MALWARE, "associationType": "url host"},
        headers=bearer(),
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["errCode"]) == ("association_not_allowed", "0x1001")
    assert error["detail"] == (
        "Address -> malware (a type of no kind): 'URL Host' is URL -> Address, Host, a matrix "
        "type, cannot name an association with a context entity; give another relationship "
        "name, or none for 'associated'"
    )


async def test_provenance_travels_with_the_association(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    body = {
        "entityID": IP,
        "relatedEntityID": FAMILY,
        "associationType": "c2-of",
        "source": " feodo ",
        "confidence": 75,
        "tlp": "TLP:AMBER+STRICT",
        "firstSeen": FIRST,
        "lastSeen": LAST,
    }
    response = await client.post(f"{BASE}/association", json=body, headers=bearer())
    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, AssociationItem)
    assert item.provenance == Provenance(
        source="feodo",
        confidence=75,
        tlp="amber+strict",
        first_seen=seconds(FIRST),
        last_seen=seconds(LAST),
    )


async def test_a_bulk_keeps_each_items_provenance(client: Client, queue: MemoryJobQueue) -> None:
    inbox = await consume(queue)
    lines = [
        orjson.dumps({"entityID": IP, "relatedEntityID": FAMILY, "source": "a", "confidence": 50}),
        orjson.dumps({"entityID": ASN, "relatedEntityID": IP}),
        orjson.dumps({"entityID": DOMAIN, "relatedEntityID": FAMILY, "tlp": "green"}),
        orjson.dumps({"entityID": IP, "relatedEntityID": FAMILY, "confidence": 200}),
    ]
    response = await client.post(
        f"{BASE}/associations",
        data=b"\n".join(lines),
        headers={**bearer(), "Content-Type": "application/x-ndjson"},
    )
    assert response.status == 202
    answer = await response.json()
    assert answer["accepted"] == 3
    assert [(r["index"], r["error"]["code"]) for r in answer["rejected"]] == [(3, "invalid_body")]
    items = await inbox.items(3)
    assert [i.provenance for i in items] == [
        Provenance(source="a", confidence=50),
        None,
        Provenance(tlp="green"),
    ]
    assert [i.association_type for i in items] == ["associated", "ASN to Address", "associated"]


async def test_a_nested_context_child_is_linked_under_its_name_and_inherits_provenance(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    body = {
        "type": "ip",
        "attributes": {"ip": "203.0.113.5"},
        "source": "feodo",
        "confidence": 75,
        "firstSeen": FIRST,
        "lastSeen": LAST,
        "associations": [
            {
                "type": "malware-family",
                "attributes": {"malware-family": "QakBot"},
                "associationType": "c2-of",
            },
            {
                "type": "asn",
                "attributes": {"asn": "AS15169"},
                "confidence": 100,
                "firstSeen": "2020-01-01T00:00:00Z",
            },
        ],
    }
    response = await client.post(f"{BASE}/entity", json=body, headers=bearer())
    assert response.status == 202, await response.text()
    (item,) = (await inbox.next()).items
    assert isinstance(item, EntityItem)
    parent = Provenance(
        source="feodo", confidence=75, first_seen=seconds(FIRST), last_seen=seconds(LAST)
    )
    own = Provenance(source="feodo", confidence=100, first_seen=seconds("2020-01-01T00:00:00Z"))
    assert item.entity.provenance == parent
    assert {c.id: c.provenance for c in item.children} == {FAMILY: parent, ASN: own}
    links = {(link.entity_id, link.related_id): link for link in item.links}
    assert links[(IP, FAMILY)].association_type == "c2-of"
    assert links[(IP, FAMILY)].provenance == parent
    assert links[(ASN, IP)].association_type == "ASN to Address"
    assert links[(ASN, IP)].provenance == own


async def test_a_context_relationship_can_be_deleted_by_name(
    client: Client, queue: MemoryJobQueue
) -> None:
    inbox = await consume(queue)
    response = await client.delete(
        f"{BASE}/association",
        json={"entityID": IP, "relatedEntityID": MALWARE, "associationType": "Indicates"},
        headers=bearer(),
    )
    assert response.status == 202
    (item,) = (await inbox.next()).items
    assert isinstance(item, AssociationItem)
    assert item.association_type == "indicates"
    response = await client.delete(
        f"{BASE}/association",
        json={"entityID": ASN, "relatedEntityID": IP, "associationType": "indicates"},
        headers=bearer(),
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "unknown_association_type"
