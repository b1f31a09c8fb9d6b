"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient
from schemathesis.specs.openapi.definitions import OPENAPI_31

from tests.backends import RabbitQueueFactory
from tests.ingest_api.support import ASN, BASE, IP, ClientFactory, bearer
from workers.store.sqlite import SqliteStore

Client = TestClient[Any, Any]

SPEC_PATHS = {
    ("post", f"{BASE}/association"),
    ("delete", f"{BASE}/association"),
    ("post", f"{BASE}/associations"),
    ("post", f"{BASE}/entity"),
    ("post", f"{BASE}/entities"),
    ("get", f"{BASE}/entity/{{id}}"),
    ("get", f"{BASE}/entity/{{id}}/associations"),
    ("get", f"{BASE}/jobs/{{jobID}}"),
    ("get", f"{BASE}/association-types"),
    ("put", f"{BASE}/association-types/{{name}}"),
    ("delete", f"{BASE}/association-types/{{name}}"),
    ("get", f"{BASE}/definitions"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
}


async def test_healthz_answers_ok(client: Client) -> None:
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_readyz_answers_200_when_broker_and_store_answer(client: Client) -> None:
    assert (await client.get("/readyz")).status == 200


@pytest.mark.rabbitmq
async def test_readyz_names_the_broker_when_it_is_unreachable(
    rabbit_queue: RabbitQueueFactory, make_client: ClientFactory
) -> None:
    rabbit = await rabbit_queue()
    client = await make_client(rabbit)
    assert rabbit.connection is not None
    await rabbit.connection.close()
    response = await client.get("/readyz")
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "not_ready"
    assert "broker" in error["message"]
    assert "store" not in error["message"]


async def test_readyz_names_the_store_when_it_does_not_answer(
    client: Client, store: SqliteStore
) -> None:
    await store.close()
    response = await client.get("/readyz")
    assert response.status == 503
    message = (await response.json())["error"]["message"]
    assert "store" in message
    assert "broker" not in message
    await store.start()


async def test_metrics_count_requests_by_canonical_route_and_status(client: Client) -> None:
    await client.post(
        f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP}, headers=bearer()
    )
    await client.get(f"{BASE}/no/such/{IP}")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert f'ingest_http_requests_total{{route="{BASE}/association",status="202"}}' in text
    assert 'route="unmatched",status="404"' in text
    assert IP not in text
    assert 'ingest_items_acknowledged_total{kind="association"}' in text


def _sample(text: str, line_start: str) -> float:
    found = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


async def test_each_scrape_counts_every_request_answered_before_it(client: Client) -> None:
    accepted = f'ingest_http_requests_total{{route="{BASE}/association",status="202"}}'
    timed = f'ingest_http_request_seconds_count{{route="{BASE}/association"}}'
    items = 'ingest_items_acknowledged_total{kind="association"}'
    before = await (await client.get("/metrics")).text()
    for _ in range(3):
        response = await client.post(
            f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP}, headers=bearer()
        )
        assert response.status == 202
    after = await (await client.get("/metrics")).text()
    for name in (accepted, timed, items):
        assert _sample(after, name) - _sample(before, name) == 3, name


async def test_openapi_is_a_valid_openapi_31_document_listing_every_spec_path(
    client: Client,
) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    errors = [str(e) for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(document)]
    assert errors == []
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert listed >= SPEC_PATHS
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "api-key"}
    assert schemes["bearerAuth"]["scheme"] == "bearer"


async def test_every_reference_in_openapi_resolves(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    names = {ref.removeprefix("#/components/schemas/") for ref in refs(document)}
    assert names and names <= set(components)
