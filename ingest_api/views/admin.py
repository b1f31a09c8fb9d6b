"""Administration endpoints (role ``admin``): custom association types and API keys.

- ``PUT /association-types/{name}`` adds a custom type or File Action, stores it and reloads
  this front's rules at once (other fronts and workers reload within
  ``INGEST_TYPES_REFRESH_SECONDS``); 409 ``association_type_exists`` on a name in use (any
  case), 400 ``invalid_association_type`` on a bad definition.
- ``DELETE /association-types/{name}`` removes a custom type; a default is a 400
  ``default_association_type``, an unknown name a 404 ``association_type_not_found``.
- ``POST /keys`` creates an API key and shows its secret this once; ``GET /keys`` lists keys
  (never a secret or its digest); ``DELETE /keys/{keyID}`` revokes one, effective at once on
  this front (its verified-key cache forgets it) and within ``INGEST_API_KEY_CACHE_SECONDS``
  on the others.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ingest_api.auth import require_role
from ingest_api.bodies import read_json
from ingest_api.checks import describe_validation_error
from ingest_api.errors import ApiError, json_response, store_errors
from ingest_api.http_models import ApiKeyBody, ApiKeyCreatedResponse, ApiKeyResponse
from ingest_api.keys import new_api_key
from ingest_api.paths import BASE
from ingest_api.responses import as_datetime, dump
from ingest_api.state import AUTHENTICATOR, RULES, SETTINGS, STORE
from schemas.http import AssociationTypeBody, AssociationTypeResponse
from schemas.rules import InvalidAssociationType, validate_custom_type
from workers.ground.errors import TransientError
from workers.ground.logs import get_logger, note
from workers.rules_cache import custom_type_record
from workers.store.records import ApiKeyRecord, api_key_status

__all__ = [
    "create_key",
    "delete_association_type",
    "list_keys",
    "put_association_type",
    "revoke_key",
]

log = get_logger(__name__)
_Body = TypeVar("_Body", bound=BaseModel)


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else as_datetime(seconds)


def key_response(record: ApiKeyRecord, now: float) -> dict[str, Any]:
    """The public view of a key (see ``ApiKeyResponse``)."""
    return {
        "apiKey": record.key_id,
        "userID": record.user_id,
        "roles": list(record.roles),
        "groups": list(record.groups),
        "createdAt": _time(record.created_at),
        "expiresAt": _time(record.expires_at),
        "status": api_key_status(record, now),
    }


async def _body(request: web.Request, model: type[_Body]) -> _Body:
    value = await read_json(request, request.app[SETTINGS].max_body_bytes)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ApiError(400, "invalid_body", describe_validation_error(exc)) from exc


async def _reload_rules(request: web.Request) -> None:
    # The change is stored; should the reload fail, the periodic refresh picks it up.
    try:
        await request.app[RULES].refresh()
    except TransientError as exc:
        log.warning("association_types.refresh_failed", error=str(exc))


# ---- association types ------------------------------------------------------------------------


@require_role("admin")
async def put_association_type(request: web.Request) -> web.StreamResponse:
    """``PUT /association-types/{name}``: add a custom type; 201 with the type as listed."""
    name = request.match_info["name"]
    body = await _body(request, AssociationTypeBody)
    rules = request.app[RULES].rules
    existing = rules.get(name)
    if existing is not None:
        raise ApiError(
            409, "association_type_exists", f"An association type named {existing.name!r} exists."
        )
    try:
        new = validate_custom_type(name, body.primary, body.nonPrimary, body.fileAction, rules)
    except InvalidAssociationType as exc:
        raise ApiError(400, InvalidAssociationType.code, f"{exc}.") from exc
    with store_errors():
        added = await request.app[STORE].put_custom_type(custom_type_record(new, time.time()))
    if not added:  # another front added the name since our rules were loaded
        await _reload_rules(request)
        raise ApiError(
            409, "association_type_exists", f"An association type named {new.name!r} exists."
        )
    await _reload_rules(request)
    note(action="association_type.added", name=new.name)
    return json_response(
        dump(AssociationTypeResponse.from_type(new)),
        status=201,
        headers={"Location": f"{BASE}/association-types/{new.name}"},
    )


@require_role("admin")
async def delete_association_type(request: web.Request) -> web.StreamResponse:
    """``DELETE /association-types/{name}``: remove a custom type (any case); 204."""
    name = request.match_info["name"]
    known = request.app[RULES].rules.get(name)
    if known is not None and not known.custom:
        raise ApiError(
            400,
            "default_association_type",
            f"{known.name!r} is a default association type; defaults cannot be removed.",
        )
    with store_errors():
        removed = await request.app[STORE].delete_custom_type(name.strip())
    if not removed:
        raise ApiError(
            404,
            "association_type_not_found",
            f"There is no custom association type named {name.strip()[:128]!r}.",
        )
    await _reload_rules(request)
    note(action="association_type.removed", name=name.strip())
    return web.Response(status=204)


# ---- API keys ---------------------------------------------------------------------------------


@require_role("admin")
async def create_key(request: web.Request) -> web.StreamResponse:
    """``POST /keys``: 201 with the new key and its secret (shown only in this answer)."""
    body = await _body(request, ApiKeyBody)
    now = time.time()
    try:
        record, secret = new_api_key(body.userID, body.roles, body.groups, body.days, now)
    except ValueError as exc:
        raise ApiError(400, "invalid_body", f"{exc}.") from exc
    with store_errors():
        await request.app[STORE].put_api_key(record)
    note(action="api_key.created", key_id=record.key_id, for_user=record.user_id)
    created = ApiKeyCreatedResponse(**key_response(record, now), apiSecret=secret)
    return json_response(dump(created), status=201)


@require_role("admin")
async def list_keys(request: web.Request) -> web.StreamResponse:
    """``GET /keys``: every key, oldest first, without secrets or digests."""
    with store_errors():
        records = await request.app[STORE].list_api_keys()
    now = time.time()
    records.sort(key=lambda r: (r.created_at, r.key_id))
    return json_response([dump(ApiKeyResponse(**key_response(r, now))) for r in records])


@require_role("admin")
async def revoke_key(request: web.Request) -> web.StreamResponse:
    """``DELETE /keys/{keyID}``: revoke a key; 204, or 404 ``api_key_not_found``."""
    key_id = request.match_info["keyID"]
    with store_errors():
        revoked = await request.app[STORE].revoke_api_key(key_id)
    if not revoked:
        raise ApiError(404, "api_key_not_found", f"There is no API key {key_id[:128]!r}.")
    request.app[AUTHENTICATOR].forget_key(key_id)
    note(action="api_key.revoked", key_id=key_id)
    return web.Response(status=204)
