"""Administration through real HTTP: custom association types take effect on this front at
once, defaults stay, and API keys are created, listed and revoked by an admin."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ingest_api.keys import new_api_key
from tests.ingest_api.support import ASN, BASE, DOMAIN, bearer
from workers.store.sqlite import SqliteStore

Client = TestClient[Any, Any]
ADMIN = bearer("root", ("admin",))
REPORTER = bearer("alice", ("reporter",))
HOST_TO_ASN = {"primary": "Host", "nonPrimary": ["ASN"], "fileAction": False}


async def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["error"]["code"] == code
    assert response.headers["x-error-id"] == body["error"]["errorID"]
    return body


async def type_names(client: Client) -> dict[str, dict[str, Any]]:
    response = await client.get(f"{BASE}/association-types", headers=ADMIN)
    assert response.status == 200
    return {t["name"]: t for t in await response.json()}


async def post_host_to_asn(client: Client) -> Any:
    body = {"entityID": DOMAIN, "relatedEntityID": ASN}
    return await client.post(f"{BASE}/association", json=body, headers=REPORTER)


# ---- association types ------------------------------------------------------------------------


async def test_a_custom_type_is_listed_and_usable_by_the_same_front_at_once(
    client: Client,
) -> None:
    await assert_error(await post_host_to_asn(client), 400, "association_not_allowed")

    response = await client.put(
        f"{BASE}/association-types/Host to ASN", json=HOST_TO_ASN, headers=ADMIN
    )
    assert response.status == 201
    assert await response.json() == {
        "name": "Host to ASN",
        "primary": "Host",
        "nonPrimary": ["ASN"],
        "fileAction": False,
        "custom": True,
    }
    assert (await type_names(client))["Host to ASN"]["custom"] is True
    assert (await post_host_to_asn(client)).status == 202


async def test_a_custom_file_action_is_accepted(client: Client) -> None:
    body = {"primary": "File", "nonPrimary": ["ASN", "CIDR"], "fileAction": True}
    response = await client.put(f"{BASE}/association-types/File Beacon", json=body, headers=ADMIN)
    assert response.status == 201
    listed = (await type_names(client))["File Beacon"]
    assert listed["fileAction"] is True and listed["nonPrimary"] == ["ASN", "CIDR"]


@pytest.mark.parametrize("name", ["host to asn", "URL HOST"])
async def test_a_name_in_use_in_any_case_is_a_409(client: Client, name: str) -> None:
    await client.put(f"{BASE}/association-types/Host to ASN", json=HOST_TO_ASN, headers=ADMIN)
    response = await client.put(f"{BASE}/association-types/{name}", json=HOST_TO_ASN, headers=ADMIN)
    await assert_error(response, 409, "association_type_exists")


async def test_a_file_action_whose_primary_is_not_file_is_a_400(client: Client) -> None:
    body = {"primary": "Host", "nonPrimary": ["ASN"], "fileAction": True}
    response = await client.put(f"{BASE}/association-types/Bad", json=body, headers=ADMIN)
    await assert_error(response, 400, "invalid_association_type")
    assert "Bad" not in await type_names(client)


@pytest.mark.parametrize(
    "body",
    [
        {"primary": "Planet", "nonPrimary": ["ASN"]},
        {"primary": "Host", "nonPrimary": []},
        {"primary": "Host", "nonPrimary": ["ASN"], "colour": "red"},
    ],
)
async def test_a_malformed_type_body_is_a_400(client: Client, body: dict[str, Any]) -> None:
    response = await client.put(f"{BASE}/association-types/Odd", json=body, headers=ADMIN)
    await assert_error(response, 400, "invalid_body")


async def test_only_an_admin_may_add_or_remove_types(client: Client) -> None:
    user = bearer("carol", ("user", "reporter", "trusted"))
    response = await client.put(
        f"{BASE}/association-types/Host to ASN", json=HOST_TO_ASN, headers=user
    )
    await assert_error(response, 403, "forbidden")
    response = await client.delete(f"{BASE}/association-types/URL Host", headers=user)
    await assert_error(response, 403, "forbidden")


async def test_removing_a_default_type_is_a_400(client: Client) -> None:
    response = await client.delete(f"{BASE}/association-types/url host", headers=ADMIN)
    body = await assert_error(response, 400, "default_association_type")
    assert "cannot be removed" in body["error"]["message"]
    assert "URL Host" in await type_names(client)


async def test_a_removed_custom_type_is_no_longer_listed_nor_accepted(client: Client) -> None:
    await client.put(f"{BASE}/association-types/Host to ASN", json=HOST_TO_ASN, headers=ADMIN)
    response = await client.delete(f"{BASE}/association-types/HOST TO ASN", headers=ADMIN)
    assert response.status == 204
    assert "Host to ASN" not in await type_names(client)
    await assert_error(await post_host_to_asn(client), 400, "association_not_allowed")


async def test_removing_an_absent_type_is_a_404(client: Client) -> None:
    response = await client.delete(f"{BASE}/association-types/Nothing", headers=ADMIN)
    await assert_error(response, 404, "association_type_not_found")


# ---- API keys ---------------------------------------------------------------------------------


async def create_key(client: Client, **body: Any) -> dict[str, Any]:
    payload = {"userID": "dave", "roles": ["user"], "groups": ["soc"], **body}
    response = await client.post(f"{BASE}/keys", json=payload, headers=ADMIN)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


def key_headers(created: dict[str, Any]) -> dict[str, str]:
    return {"api-key": created["apiKey"], "api-secret": created["apiSecret"]}


async def test_a_created_key_shows_its_secret_once_and_authenticates(client: Client) -> None:
    created = await create_key(client, days=30)
    assert created["userID"] == "dave"
    assert created["roles"] == ["user"] and created["groups"] == ["soc"]
    assert created["apiKey"].startswith("ak_") and len(created["apiSecret"]) >= 43
    assert created["expiresAt"] is not None and created["status"] == "active"
    response = await client.get(f"{BASE}/definitions", headers=key_headers(created))
    assert response.status == 200


async def test_a_key_without_days_never_expires(client: Client) -> None:
    created = await create_key(client)
    assert created["expiresAt"] is None


async def test_listed_keys_never_show_a_secret_or_its_digest(
    client: Client, store: SqliteStore
) -> None:
    created = await create_key(client)
    response = await client.get(f"{BASE}/keys", headers=ADMIN)
    assert response.status == 200
    listed = await response.json()
    [mine] = [k for k in listed if k["apiKey"] == created["apiKey"]]
    assert mine["userID"] == "dave" and mine["status"] == "active"
    digest = (await store.get_api_key(created["apiKey"])).secret_digest  # type: ignore[union-attr]
    text = await response.text()
    assert created["apiSecret"] not in text
    assert digest not in text
    assert "apiSecret" not in mine


async def test_a_key_expiring_beyond_year_9999_is_still_listed(
    client: Client, store: SqliteStore
) -> None:
    record, _ = new_api_key("eve", ["user"], [], 10**7, time.time())  # as the CLI allows
    await store.put_api_key(record)
    response = await client.get(f"{BASE}/keys", headers=ADMIN)
    assert response.status == 200
    [listed] = [k for k in await response.json() if k["apiKey"] == record.key_id]
    assert listed["expiresAt"].startswith("9999-12-31")


async def test_a_revoked_key_is_refused_at_once_by_the_front_that_revoked_it(
    client: Client,
) -> None:
    created = await create_key(client)
    headers = key_headers(created)
    assert (await client.get(f"{BASE}/definitions", headers=headers)).status == 200  # cached

    response = await client.delete(f"{BASE}/keys/{created['apiKey']}", headers=ADMIN)
    assert response.status == 204

    await assert_error(
        await client.get(f"{BASE}/definitions", headers=headers), 401, "unauthorized"
    )
    listed = await (await client.get(f"{BASE}/keys", headers=ADMIN)).json()
    assert [k["status"] for k in listed if k["apiKey"] == created["apiKey"]] == ["revoked"]


async def test_revoking_an_unknown_key_is_a_404(client: Client) -> None:
    response = await client.delete(f"{BASE}/keys/ak_nothing", headers=ADMIN)
    await assert_error(response, 404, "api_key_not_found")


@pytest.mark.parametrize(
    "body",
    [
        {"userID": "dave", "roles": ["superuser"]},
        {"userID": "dave", "roles": []},
        {"userID": "", "roles": ["user"]},
        {"userID": "dave", "roles": ["user"], "days": 0},
        {"userID": "dave", "roles": ["user"], "days": 10**9},
    ],
)
async def test_an_invalid_key_request_is_a_400(client: Client, body: dict[str, Any]) -> None:
    response = await client.post(f"{BASE}/keys", json=body, headers=ADMIN)
    await assert_error(response, 400, "invalid_body")


async def test_only_an_admin_may_manage_keys(client: Client) -> None:
    user = bearer("carol", ("user", "reporter"))
    body = {"userID": "carol", "roles": ["admin"]}
    await assert_error(await client.post(f"{BASE}/keys", json=body, headers=user), 403, "forbidden")
    await assert_error(await client.get(f"{BASE}/keys", headers=user), 403, "forbidden")
    await assert_error(await client.delete(f"{BASE}/keys/ak_x", headers=user), 403, "forbidden")


async def test_the_openapi_document_describes_the_admin_paths(client: Client) -> None:
    paths = (await (await client.get("/openapi.json")).json())["paths"]
    assert {"put", "delete"} <= set(paths[f"{BASE}/association-types/{{name}}"])
    assert {"post", "get"} <= set(paths[f"{BASE}/keys"])
    assert "delete" in paths[f"{BASE}/keys/{{keyID}}"]
