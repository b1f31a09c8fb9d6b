"""The whole graph through the API (SPEC §2, §5): a context association and its provenance
written through the front, processed by a worker and read back from both ends; the association
types say that context names are free."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from schemas import entity_id
from tests.ingest_api.support import ASN, BASE, IP, bearer
from tests.workers.helpers import fast_settings, wait_for_job
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore
from workers.worker import Worker

Client = TestClient[Any, Any]
READER = bearer("carol", ("user",))
ADMIN = bearer("root", ("admin",))
FAMILY = entity_id("malware-family", "qakbot")


@pytest.fixture
async def worker(
    queue: MemoryJobQueue, store: SqliteStore, tmp_path: Path
) -> AsyncIterator[Worker]:
    worker = Worker(queue, store, fast_settings(tmp_path))
    await worker.start()
    yield worker
    await worker.stop(5)


async def send(client: Client, store: SqliteStore, path: str, body: Any, user: str) -> None:
    response = await client.post(f"{BASE}{path}", json=body, headers=bearer(user))
    assert response.status == 202, await response.text()
    job = await wait_for_job(store, (await response.json())["jobID"])
    assert job.status == "done", job


async def read(client: Client, path: str, **query: str) -> Any:
    response = await client.get(f"{BASE}{path}", params=query, headers=READER)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_context_association_and_its_sources_read_back_from_both_ends(
    client: Client, store: SqliteStore, worker: Worker
) -> None:
    feodo = {
        "type": "ip",
        "attributes": {"ip": "203.0.113.5"},
        "source": "feodo",
        "confidence": 75,
        "firstSeen": "2025-12-30T13:56:31Z",
        "lastSeen": "2026-03-12T00:00:00Z",
        "associations": [
            {
                "type": "malware-family",
                "attributes": {"malware-family": "QakBot"},
                "associationType": "c2-of",
            }
        ],
    }
    await send(client, store, "/entity", feodo, "importer")
    threatfox = {
        "entityID": IP,
        "relatedEntityID": FAMILY,
        "associationType": "C2-of",
        "source": "threatfox",
        "confidence": 100,
        "tlp": "clear",
        "firstSeen": "2024-01-01T00:00:00Z",
    }
    await send(client, store, "/association", threatfox, "analyst")

    entity = await read(client, f"/entity/{IP}")
    assert [(s["kind"], s["name"], s["confidence"]) for s in entity["sources"]] == [
        ("source", "feodo", 75),
        ("user", "importer", 75),
    ]
    assert entity["sources"][0]["firstSeen"] == "2025-12-30T13:56:31Z"
    assert entity["sources"][0]["lastSeen"] == "2026-03-12T00:00:00Z"

    [out] = (await read(client, f"/entity/{IP}/associations", associationType="C2-OF"))["items"]
    assert (out["direction"], out["associationName"], out["fileAction"]) == ("out", "c2-of", False)
    assert out["otherEntity"] == {"id": FAMILY, "type": "malware-family", "summary": "qakbot"}
    assert out["submissions"] == 2
    assert [(s["name"], s["confidence"], s["tlp"], s["firstSeen"], s["lastSeen"])
            for s in out["sources"]] == [
        ("feodo", 75, None, "2025-12-30T13:56:31Z", "2026-03-12T00:00:00Z"),
        ("threatfox", 100, "clear", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("analyst", 100, "clear", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("importer", 75, None, "2025-12-30T13:56:31Z", "2026-03-12T00:00:00Z"),
    ]  # fmt: skip
    [back] = (await read(client, f"/entity/{FAMILY}/associations"))["items"]
    assert (back["direction"], back["otherEntity"]["id"]) == ("in", IP)


async def test_a_resubmission_from_one_source_changes_no_other_sources_entry(
    client: Client, store: SqliteStore, worker: Worker
) -> None:
    await send(client, store, "/entity", {"type": "ip", "attributes": {"ip": "203.0.113.5"}}, "a")
    await send(client, store, "/entity", {"type": "asn", "attributes": {"asn": "15169"}}, "a")
    one = {"entityID": ASN, "relatedEntityID": IP, "source": "x", "confidence": 40, "tlp": "red"}
    two = {"entityID": ASN, "relatedEntityID": IP, "source": "y", "confidence": 90}
    await send(client, store, "/association", one, "a")
    await send(client, store, "/association", two, "b")
    before = (await read(client, f"/entity/{IP}/associations"))["items"][0]["sources"]
    await send(client, store, "/association", {**one, "confidence": 10, "tlp": "green"}, "a")

    after = (await read(client, f"/entity/{IP}/associations"))["items"][0]["sources"]
    by_name = {s["name"]: s for s in after}
    assert by_name["y"] == next(s for s in before if s["name"] == "y")
    assert by_name["b"] == next(s for s in before if s["name"] == "b")
    assert (by_name["x"]["confidence"], by_name["x"]["tlp"]) == (40, "green")


async def test_the_association_types_end_with_the_context_rule(client: Client) -> None:
    listed = await read(client, "/association-types")
    assert all(t.get("context") is not True for t in listed[:-1])
    rule = listed[-1]
    assert (rule["name"], rule["context"], rule["freeName"]) == ("associated", True, True)
    assert {"malware", "malware-family", "threat", "adversary", "cve"} <= set(rule["contextTypes"])
    assert "ip" not in rule["contextTypes"]
    assert "any relationship name" in rule["description"]


async def test_a_custom_type_cannot_take_the_default_context_name(client: Client) -> None:
    body = {"primary": "Host", "nonPrimary": ["ASN"]}
    response = await client.put(f"{BASE}/association-types/Associated", json=body, headers=ADMIN)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_association_type"
    assert "context" in error["message"]


async def test_the_openapi_document_shows_a_context_association_with_provenance(
    client: Client,
) -> None:
    response = await client.get("/openapi.json")
    document = await response.json()
    post = document["paths"][f"{BASE}/association"]["post"]["requestBody"]["content"]
    bodies = [e["value"] for e in post["application/json"]["examples"].values()]
    context = [b for b in bodies if b["relatedEntityID"].startswith("malware-family-")]
    assert context and {"source", "confidence", "tlp", "firstSeen", "lastSeen"} <= set(context[0])
    schemas = document["components"]["schemas"]
    assert {"source", "confidence", "tlp", "firstSeen", "lastSeen"} <= set(
        schemas["EntityBody"]["properties"]
    )
    assert "sources" in schemas["AssociationItemResponse"]["properties"]
    assert "sources" in schemas["EntityResponse"]["properties"]
    read = document["paths"][f"{BASE}/entity/{{id}}/associations"]["get"]["responses"]["200"]
    [example] = read["content"]["application/json"]["examples"].values()
    assert example["value"]["items"][0]["sources"][0]["name"] == "feodo"
