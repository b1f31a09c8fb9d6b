"""Who may write: API keys, Bearer JWTs, a trusted gateway; 400/401/403 otherwise."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ingest_api.auth import Authenticator
from ingest_api.keys import new_api_key
from schemas import AssociationItem
from tests.ingest_api.support import (
    ASN,
    BASE,
    IP,
    JWT_SECRET,
    ClientFactory,
    bearer,
    consume,
    make_settings,
)
from workers.ground.errors import ConfigurationError
from workers.queue.memory import MemoryJobQueue
from workers.store.sqlite import SqliteStore

Client = TestClient[Any, Any]
ASSOCIATION = {"entityID": ASN, "relatedEntityID": IP}


async def post(client: Client, headers: dict[str, str]) -> Any:
    return await client.post(f"{BASE}/association", json=ASSOCIATION, headers=headers)


async def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status == status
    error = (await response.json())["error"]
    assert error["code"] == code
    assert response.headers["x-error-id"] == error["errorID"]


async def test_a_request_without_credentials_is_unauthorized_with_a_challenge(
    client: Client,
) -> None:
    response = await post(client, {})
    await assert_error(response, 401, "unauthorized")
    assert "Bearer" in response.headers["WWW-Authenticate"]


async def test_a_valid_api_key_may_write(client: Client, api_key: dict[str, str]) -> None:
    assert (await post(client, api_key)).status == 202


async def test_a_wrong_secret_is_unauthorized(client: Client, api_key: dict[str, str]) -> None:
    response = await post(client, {**api_key, "api-secret": api_key["api-secret"] + "x"})
    await assert_error(response, 401, "unauthorized")


async def test_an_unknown_key_is_unauthorized(client: Client, api_key: dict[str, str]) -> None:
    response = await post(client, {**api_key, "api-key": "ak_nosuchkey"})
    await assert_error(response, 401, "unauthorized")


async def test_a_key_without_its_secret_is_unauthorized(
    client: Client, api_key: dict[str, str]
) -> None:
    response = await post(client, {"api-key": api_key["api-key"]})
    await assert_error(response, 401, "unauthorized")


async def test_an_expired_key_is_unauthorized(client: Client, store: SqliteStore) -> None:
    record, secret = new_api_key("bob", ["reporter"], [], 1, time.time() - 2 * 86_400)
    await store.put_api_key(record)
    response = await post(client, {"api-key": record.key_id, "api-secret": secret})
    await assert_error(response, 401, "unauthorized")
    assert "expired" in (await response.json())["error"]["message"]


async def test_a_revoked_key_is_unauthorized_once_the_cache_expires(
    make_client: ClientFactory, store: SqliteStore, api_key: dict[str, str]
) -> None:
    client = await make_client(api_key_cache_seconds=0)
    assert (await post(client, api_key)).status == 202
    await store.revoke_api_key(api_key["api-key"])
    await assert_error(await post(client, api_key), 401, "unauthorized")


async def test_a_hot_key_is_served_from_the_cache_without_the_store(
    client: Client, store: SqliteStore, api_key: dict[str, str]
) -> None:
    assert (await post(client, api_key)).status == 202
    await store.revoke_api_key(api_key["api-key"])  # not seen while the entry is fresh
    assert (await post(client, api_key)).status == 202


async def test_an_expired_jwt_is_unauthorized(client: Client) -> None:
    response = await post(client, bearer(expires_in=-60))
    await assert_error(response, 401, "unauthorized")
    assert "expired" in (await response.json())["error"]["message"]


async def test_a_jwt_signed_with_another_secret_is_unauthorized(client: Client) -> None:
    await assert_error(await post(client, bearer(secret="x" * 40)), 401, "unauthorized")


async def test_a_jwt_without_expiry_is_unauthorized(client: Client) -> None:
    token = jwt.encode({"sub": "alice", "roles": ["reporter"]}, JWT_SECRET, algorithm="HS256")
    await assert_error(
        await post(client, {"Authorization": f"Bearer {token}"}), 401, "unauthorized"
    )


async def test_a_non_bearer_authorization_is_unauthorized(client: Client) -> None:
    response = await post(client, {"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    await assert_error(response, 401, "unauthorized")


async def test_an_es256_jwt_is_verified_with_the_public_key(make_client: ClientFactory) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    client = await make_client(jwt_public_key=public_pem, jwt_audience="ingest")
    claims = {"sub": "carol", "roles": "reporter", "aud": "ingest", "exp": time.time() + 60}
    token = jwt.encode(claims, private, algorithm="ES256")
    assert (await post(client, {"Authorization": f"Bearer {token}"})).status == 202
    wrong_audience = jwt.encode({**claims, "aud": "other"}, private, algorithm="ES256")
    response = await post(client, {"Authorization": f"Bearer {wrong_audience}"})
    await assert_error(response, 401, "unauthorized")


async def test_a_caller_without_the_reporter_role_is_forbidden(client: Client) -> None:
    await assert_error(await post(client, bearer(roles=("user",))), 403, "forbidden")


async def test_admin_implies_the_reporter_role(client: Client) -> None:
    assert (await post(client, bearer(roles=("admin",)))).status == 202


async def test_both_credential_methods_at_once_are_a_bad_request(
    client: Client, api_key: dict[str, str]
) -> None:
    response = await post(client, {**api_key, **bearer()})
    await assert_error(response, 400, "ambiguous_credentials")


async def test_spoofed_user_and_groups_headers_are_ignored(
    client: Client, queue: MemoryJobQueue, api_key: dict[str, str]
) -> None:
    inbox = await consume(queue)
    headers = {**api_key, "user-id": "mallory", "groups": "admins,everyone"}
    assert (await post(client, headers)).status == 202
    (item,) = await inbox.items(1)
    assert isinstance(item, AssociationItem)
    assert (item.user, item.groups) == ("alice", ("soc",))


async def test_a_trusted_gateway_sets_user_and_groups(
    make_client: ClientFactory, queue: MemoryJobQueue
) -> None:
    client = await make_client(trust_gateway_headers=True)
    inbox = await consume(queue)
    response = await post(client, {"user-id": "dave", "groups": "soc, cert"})
    assert response.status == 202
    (item,) = await inbox.items(1)
    assert isinstance(item, AssociationItem)
    assert (item.user, item.groups) == ("dave", ("soc", "cert"))


async def test_a_trusted_gateway_request_without_user_is_unauthorized(
    make_client: ClientFactory,
) -> None:
    client = await make_client(trust_gateway_headers=True)
    await assert_error(await post(client, bearer()), 401, "unauthorized")


KEY_REQUEST = {"userID": "mallory", "roles": ["admin"], "days": 30}


async def test_no_request_header_grants_a_role_behind_a_trusted_gateway(
    make_client: ClientFactory,
) -> None:
    client = await make_client(trust_gateway_headers=True)
    spoofed = {"user-id": "mallory", "roles": "admin", "role": "admin", "x-roles": "admin"}

    response = await client.post(f"{BASE}/keys", json=KEY_REQUEST, headers=spoofed)

    await assert_error(response, 403, "forbidden")


async def test_behind_a_gateway_roles_come_from_the_groups_the_deployment_names(
    make_client: ClientFactory,
) -> None:
    client = await make_client(trust_gateway_headers=True, gateway_admin_groups="secops, root")

    admin = await client.post(
        f"{BASE}/keys", json=KEY_REQUEST, headers={"user-id": "sam", "groups": "cert,secops"}
    )
    other = await client.post(
        f"{BASE}/keys", json=KEY_REQUEST, headers={"user-id": "sam", "groups": "cert"}
    )

    assert admin.status == 201
    await assert_error(other, 403, "forbidden")


async def test_a_gateway_deployment_can_keep_the_reporter_role_to_some_groups(
    make_client: ClientFactory,
) -> None:
    client = await make_client(
        trust_gateway_headers=True, gateway_default_roles="user", gateway_reporter_groups="feeds"
    )

    refused = await post(client, {"user-id": "erin", "groups": "soc"})
    accepted = await post(client, {"user-id": "erin", "groups": "soc,feeds"})

    await assert_error(refused, 403, "forbidden")
    assert accepted.status == 202


def test_a_default_gateway_role_that_does_not_exist_stops_the_start(store: SqliteStore) -> None:
    settings = make_settings(trust_gateway_headers=True, gateway_default_roles="user,superuser")
    with pytest.raises(ConfigurationError, match="superuser"):
        Authenticator(settings, store)
