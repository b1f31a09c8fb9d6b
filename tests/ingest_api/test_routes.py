"""The route table: what the front serves is what /openapi.json describes, and no more."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def _document(client: Client) -> Any:
    response = await client.get("/openapi.json")
    assert response.status == 200
    return await response.json()


async def test_every_served_route_is_in_the_openapi_document_and_every_documented_one_is_served(
    client: Client,
) -> None:
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
    }
    document = await _document(client)
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == documented


async def test_every_path_parameter_is_documented_as_one(client: Client) -> None:
    document = await _document(client)
    for path, operations in document["paths"].items():
        placeholders = re.findall(r"{([^}]+)}", path)
        for operation in operations.values():
            parameters = operation.get("parameters", [])
            in_path = [p["name"] for p in parameters if p["in"] == "path"]
            assert in_path == placeholders, path
            assert all(p["required"] for p in parameters if p["in"] == "path"), path


async def test_an_operation_needing_credentials_documents_401_and_403(client: Client) -> None:
    document = await _document(client)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "security" in operation:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_every_write_documents_the_idempotency_key_header_and_its_422(
    client: Client,
) -> None:
    document = await _document(client)
    writes = [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "202" in operation["responses"]
    ]
    assert len(writes) == 6
    for method, path, operation in writes:
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [(p["name"], p["required"]) for p in headers] == [("Idempotency-Key", False)]
        assert headers[0]["schema"]["maxLength"] == 255, (method, path)
        assert "idempotency_key_reused" in operation["responses"]["422"]["description"]
