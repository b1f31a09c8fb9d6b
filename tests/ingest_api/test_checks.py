"""The synchronous checks of SPEC §3: each is a 400 with its code, and nothing is queued."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.ingest_api.support import ASN, BASE, DOMAIN, FILE, IP, MALWARE, URL, bearer
from workers.queue.memory import MemoryJobQueue

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}


async def refused(
    client: Client,
    queue: MemoryJobQueue,
    path: str,
    *,
    json: Any = None,
    data: bytes | None = None,
) -> dict[str, Any]:
    """POST to ``path``, expect a well-formed 400, check nothing was queued; the error object."""
    headers = {**bearer(), **JSON}
    if data is None:
        response = await client.post(f"{BASE}{path}", json=json, headers=headers)
    else:
        response = await client.post(f"{BASE}{path}", data=data, headers=headers)
    assert response.status == 400
    body = await response.json()
    error: dict[str, Any] = body["error"]
    assert response.headers["x-error"] == error["message"]
    assert response.headers["x-error-id"] == error["errorID"]
    assert await queue.depth() == 0  # an accepted write would be waiting there: no consumer
    return error


async def test_malformed_json_is_refused(client: Client, queue: MemoryJobQueue) -> None:
    error = await refused(client, queue, "/association", data=b'{"entityID": ')
    assert error["code"] == "invalid_json"


async def test_a_body_of_the_wrong_shape_is_refused_with_a_readable_message(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(client, queue, "/association", json={"entityID": IP, "extra": 1})
    assert error["code"] == "invalid_body"
    assert "relatedEntityID" in error["message"]
    assert "extra" in error["message"]


async def test_a_body_that_is_not_an_object_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(client, queue, "/association", json=[1, 2])
    assert error["code"] == "invalid_body"


@pytest.mark.parametrize(
    "bad_id",
    [
        "ip-" + "A" * 64,  # uppercase hex
        "ip-" + "a" * 63,  # too short
        "nosuchtype-" + "a" * 64,  # unknown type
        "203.0.113.5",  # a value, not an ID
    ],
)
async def test_an_id_not_made_of_a_known_type_and_64_hex_digits_is_refused(
    client: Client, queue: MemoryJobQueue, bad_id: str
) -> None:
    error = await refused(
        client, queue, "/association", json={"entityID": ASN, "relatedEntityID": bad_id}
    )
    assert error["code"] == "invalid_entity_id"
    assert "relatedEntityID" in error["message"]


async def test_an_entity_associated_with_itself_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/association", json={"entityID": IP, "relatedEntityID": IP}
    )
    assert error["code"] == "self_association"


async def test_an_unknown_association_type_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client,
        queue,
        "/association",
        json={"entityID": ASN, "relatedEntityID": IP, "associationType": "Friends With"},
    )
    assert error["code"] == "unknown_association_type"


async def test_the_reverse_direction_is_refused_with_threatconnect_code(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/association", json={"entityID": IP, "relatedEntityID": ASN}
    )
    assert error["code"] == "association_not_allowed"
    assert error["errCode"] == "0x1001"
    assert error["message"] == "Association cannot be applied to the indicator types."
    assert error["detail"] == "Address -> ASN: no type allows it; ASN -> Address is ASN to Address"


async def test_a_kind_no_type_allows_is_refused(client: Client, queue: MemoryJobQueue) -> None:
    error = await refused(
        client, queue, "/association", json={"entityID": DOMAIN, "relatedEntityID": ASN}
    )
    assert (error["code"], error["errCode"]) == ("association_not_allowed", "0x1001")


async def test_a_matrix_type_name_on_a_context_pair_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    body = {"entityID": URL, "relatedEntityID": MALWARE, "associationType": "URL Host"}
    error = await refused(client, queue, "/association", json=body)
    assert (error["code"], error["errCode"]) == ("association_not_allowed", "0x1001")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("confidence", 101),
        ("confidence", "high"),
        ("tlp", "purple"),
        ("source", ""),
        ("source", "bad\nname"),
        ("firstSeen", "2024-01-01T00:00:00"),  # no offset
        ("lastSeen", "yesterday"),
    ],
)
async def test_bad_provenance_is_refused_with_the_field_named(
    client: Client, queue: MemoryJobQueue, field: str, value: Any
) -> None:
    body = {"entityID": IP, "relatedEntityID": MALWARE, field: value}
    error = await refused(client, queue, "/association", json=body)
    assert error["code"] == "invalid_body"
    assert field in error["message"]


async def test_first_seen_after_last_seen_is_refused(client: Client, queue: MemoryJobQueue) -> None:
    body = {
        "type": "ip",
        "attributes": {"ip": "203.0.113.5"},
        "firstSeen": "2024-02-01T00:00:00Z",
        "lastSeen": "2024-01-01T00:00:00Z",
    }
    error = await refused(client, queue, "/entity", json=body)
    assert error["code"] == "invalid_body"
    assert "firstSeen is after lastSeen" in error["message"]


async def test_an_ambiguous_pair_is_refused_with_the_candidates(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/association", json={"entityID": FILE, "relatedEntityID": DOMAIN}
    )
    assert error["code"] == "ambiguous_association_type"
    assert error["candidates"] == ["File DNS Query", "File Traffic"]


async def test_a_named_type_whose_kinds_do_not_fit_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client,
        queue,
        "/association",
        json={"entityID": ASN, "relatedEntityID": IP, "associationType": "File Download"},
    )
    assert error["code"] == "association_not_allowed"
    assert error["detail"] == (
        "ASN -> Address: 'File Download' is URL -> File; ASN -> Address is ASN to Address"
    )


async def test_an_entity_without_its_main_attribute_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/entity", json={"type": "ip", "attributes": {"address": "203.0.113.5"}}
    )
    assert error["code"] == "invalid_entity"


async def test_an_entity_whose_main_attribute_fails_normalisation_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/entity", json={"type": "ip", "attributes": {"ip": "127.0.0.1"}}
    )
    assert error["code"] == "invalid_entity"


async def test_an_entity_of_an_unknown_type_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/entity", json={"type": "spaceship", "attributes": {"spaceship": "x"}}
    )
    assert error["code"] == "unknown_entity_type"


async def test_an_entity_type_named_like_a_kind_names_the_entity_types_of_that_kind(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client, queue, "/entity", json={"type": "Address", "attributes": {"ip": "203.0.113.5"}}
    )
    assert error["code"] == "unknown_entity_type"
    assert "Address is a kind; its entity types are ip" in error["message"]


async def test_an_unknown_id_prefix_names_the_nearest_known_types(
    client: Client, queue: MemoryJobQueue
) -> None:
    error = await refused(
        client,
        queue,
        "/association",
        json={"entityID": "damain-" + "0" * 64, "relatedEntityID": IP},
    )
    assert error["code"] == "invalid_entity_id"
    assert "'damain' is an unknown entity type; did you mean domain" in error["message"]


async def test_a_nested_child_that_cannot_be_associated_is_refused_with_its_path(
    client: Client, queue: MemoryJobQueue
) -> None:
    body = {
        "type": "ip",
        "attributes": {"ip": "203.0.113.5"},
        "associations": [
            {"type": "url", "attributes": {"url": "http://example.com/"}},
            {"type": "email-address", "attributes": {"email-address": "a@example.com"}},
        ],
    }
    error = await refused(client, queue, "/entity", json=body)
    assert error["code"] == "association_not_allowed"
    assert error["message"].startswith("associations[1]")


async def test_a_nested_child_failing_normalisation_is_refused(
    client: Client, queue: MemoryJobQueue
) -> None:
    body = {
        "type": "domain",
        "attributes": {"domain": "example.com"},
        "associations": [{"type": "ip", "attributes": {"ip": "not an ip"}}],
    }
    error = await refused(client, queue, "/entity", json=body)
    assert error["code"] == "invalid_entity"


async def test_an_empty_bulk_is_refused(client: Client, queue: MemoryJobQueue) -> None:
    error = await refused(client, queue, "/associations", data=b"\n\n")
    assert error["code"] == "invalid_body"


async def test_an_entity_nested_beyond_the_parser_depth_is_refused_not_crashed(
    client: Client, queue: MemoryJobQueue
) -> None:
    text = '{"type":"ip","attributes":{"ip":"203.0.113.5"}}'
    for level in range(400):
        kind = "domain" if level % 2 == 0 else "ip"
        main = "example.com" if kind == "domain" else "203.0.113.5"
        text = f'{{"type":"{kind}","attributes":{{"{kind}":"{main}"}},"associations":[{text}]}}'
    error = await refused(client, queue, "/entity", data=text.encode())
    assert error["code"] == "invalid_body"
    assert len(error["message"]) < 500
