"""Every non-2xx answer has the error body and x-error headers, even aiohttp's own."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from tests.ingest_api.support import ASN, BASE, IP, ClientFactory, bearer

Client = TestClient[Any, Any]


async def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error object of a well-formed error answer with ``status``."""
    assert response.status == status
    assert response.content_type == "application/json"
    error: dict[str, Any] = (await response.json())["error"]
    assert set(error) >= {"code", "message", "errorID"}
    assert response.headers["x-error"] == error["message"]
    assert response.headers["x-error-id"] == error["errorID"]
    return error


async def test_an_unknown_route_is_a_well_formed_404(client: Client) -> None:
    error = await error_of(await client.get(f"{BASE}/nowhere"), 404)
    assert error["code"] == "not_found"


async def test_a_wrong_method_is_a_well_formed_405_with_allow(client: Client) -> None:
    response = await client.put(f"{BASE}/association", headers=bearer())
    error = await error_of(response, 405)
    assert error["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_a_body_over_the_limit_is_a_well_formed_413(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=1024)
    body = {"entityID": ASN, "relatedEntityID": IP, "associationType": "x" * 2000}
    response = await client.post(f"{BASE}/association", json=body, headers=bearer())
    assert (await error_of(response, 413))["code"] == "body_too_large"


async def test_a_streamed_bulk_over_the_limit_is_a_well_formed_413(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_body_bytes=2048)
    line = orjson.dumps({"entityID": ASN, "relatedEntityID": IP}) + b"\n"

    async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for _ in range(40):
            yield line

    response = await client.post(
        f"{BASE}/associations",
        data=chunks(),
        headers={**bearer(), "Content-Type": "application/x-ndjson"},
    )
    assert (await error_of(response, 413))["code"] == "body_too_large"


async def test_a_bulk_over_the_item_limit_is_a_well_formed_413(
    make_client: ClientFactory,
) -> None:
    client = await make_client(bulk_max_items=3)
    items = [{"entityID": ASN, "relatedEntityID": IP}] * 4
    response = await client.post(f"{BASE}/associations", json=items, headers=bearer())
    assert (await error_of(response, 413))["code"] == "too_many_items"


async def test_a_large_array_over_the_item_limit_is_a_413_whatever_follows_the_limit(
    make_client: ClientFactory,
) -> None:
    """A JSON array above 1 MiB is read an item at a time: the item beyond the limit is
    refused before what follows it is parsed, so a fault further on is not the answer."""
    client = await make_client(bulk_max_items=3)
    item = orjson.dumps({"entityID": ASN, "relatedEntityID": IP, "source": "s" * 400_000})
    body = b"[" + b",".join([item] * 4) + b", {not json]"
    assert len(body) > 1024 * 1024
    response = await client.post(
        f"{BASE}/associations",
        data=body,
        headers={**bearer(), "Content-Type": "application/json"},
    )
    assert (await error_of(response, 413))["code"] == "too_many_items"


async def test_a_body_that_is_not_json_is_a_well_formed_415(client: Client) -> None:
    response = await client.post(
        f"{BASE}/association",
        data=b"entityID=x",
        headers={**bearer(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (await error_of(response, 415))["code"] == "unsupported_media_type"


async def test_a_bulk_in_plain_text_is_a_well_formed_415(client: Client) -> None:
    response = await client.post(
        f"{BASE}/associations", data=b"{}", headers={**bearer(), "Content-Type": "text/plain"}
    )
    await error_of(response, 415)


async def test_the_request_id_sent_by_the_client_is_echoed_and_logged(client: Client) -> None:
    with capture_logs() as logs:
        response = await client.get("/healthz", headers={"x-request-id": "req-123"})
    assert response.headers["x-request-id"] == "req-123"
    completed = [e for e in logs if e["event"] == "request.completed"]
    assert completed[0]["route"] == "/healthz"
    assert completed[0]["status"] == 200


async def test_credentials_never_appear_in_the_logs(
    client: Client, api_key: dict[str, str]
) -> None:
    token = bearer()["Authorization"]
    with capture_logs() as logs:
        await client.post(
            f"{BASE}/association", json={"entityID": ASN, "relatedEntityID": IP}, headers=api_key
        )
        await client.post(f"{BASE}/association", json={}, headers={**api_key, **bearer()})
    text = repr(logs)
    assert "request.completed" in text
    assert api_key["api-secret"] not in text
    assert token.split()[1] not in text


async def test_an_accepted_job_is_logged_with_request_user_and_job(client: Client) -> None:
    with capture_logs() as logs:
        response = await client.post(
            f"{BASE}/association",
            json={"entityID": ASN, "relatedEntityID": IP},
            headers={**bearer(user="alice"), "x-request-id": "req-9"},
        )
    job_id = (await response.json())["jobID"]
    (accepted,) = logs
    assert accepted["event"] == "request.completed"
    assert (accepted["request_id"], accepted["user_id"]) == ("req-9", "alice")
    assert (accepted["job_id"], accepted["items"], accepted["status"]) == (job_id, 1, 202)
