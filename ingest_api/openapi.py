"""The OpenAPI 3.1 description of the front (``GET /openapi.json``), generated from the
``schemas.http`` pydantic models so that the document and the validation never drift apart.

Every endpoint of SPEC §3 is listed, including the read endpoints served by other modules.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from ingest_api.views.admin import ApiKeyBody, ApiKeyCreatedResponse, ApiKeyResponse
from ingest_api.views.writes import BASE
from schemas.http import (
    AckResponse,
    AssociationBody,
    AssociationListResponse,
    AssociationTypeBody,
    AssociationTypeResponse,
    BulkAckResponse,
    BulkItemError,
    DefinitionResponse,
    EntityAckResponse,
    EntityBody,
    EntityResponse,
    ErrorBody,
    ErrorDetail,
    JobStatusResponse,
)

__all__ = ["BulkErrorBody", "openapi_document"]

_REF = "#/components/schemas/{model}"
_AUTH: list[dict[str, list[str]]] = [{"apiKey": [], "apiSecret": []}, {"bearerAuth": []}]
_NDJSON = "application/x-ndjson"


class BulkErrorBody(BaseModel):
    """A bulk in which no item is valid (400): the error and every item's reason."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail
    accepted: int = Field(default=0, description="always 0: nothing was queued")
    rejected: list[BulkItemError] = Field(description="every item, by position, with its error")


_MODELS: tuple[type[BaseModel], ...] = (
    AssociationBody,
    EntityBody,
    AssociationTypeBody,
    AckResponse,
    EntityAckResponse,
    BulkAckResponse,
    ErrorBody,
    BulkErrorBody,
    JobStatusResponse,
    EntityResponse,
    AssociationListResponse,
    AssociationTypeResponse,
    DefinitionResponse,
    ApiKeyBody,
    ApiKeyResponse,
    ApiKeyCreatedResponse,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "x-error": {"description": "the error message", "schema": {"type": "string"}},
            "x-error-id": {"description": "the errorID", "schema": {"type": "string"}},
        },
        "content": _json(_ref(model)),
    }


_COMMON_ERRORS = {
    "401": _error("no or wrong credentials (with WWW-Authenticate)"),
    "403": _error("the caller lacks the role"),
    "404": _error("unknown route"),
    "405": _error("method not allowed"),
}
_WRITE_ERRORS = {
    **_COMMON_ERRORS,
    "400": _error(
        "malformed JSON, wrong shape, invalid entity ID or entity, self-association, unknown "
        "or ambiguous association type, association_not_allowed (errCode 0x1001), "
        "ambiguous_credentials"
    ),
    "413": _error("body larger than the limit (16 MiB) or too many bulk items (10,000)"),
    "415": _error("wrong Content-Type"),
    "503": {
        **_error("the broker could not confirm in time (broker_unavailable, queue_full)"),
        "headers": {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}},
            "x-error": {"schema": {"type": "string"}},
            "x-error-id": {"schema": {"type": "string"}},
        },
    },
}
_LOCATION = {
    "Location": {"description": "/api/ingest/v1/jobs/{jobID}", "schema": {"type": "string"}}
}


def _write(summary: str, body: dict[str, Any], ack: type[BaseModel], **extra: Any) -> Any:
    responses: dict[str, Any] = {
        "202": {
            "description": "durably queued (broker confirm received)",
            "headers": _LOCATION,
            "content": _json(_ref(ack)),
        },
        **_WRITE_ERRORS,
    }
    responses.update(extra.pop("responses", {}))
    return {
        "summary": summary,
        "security": _AUTH,
        "requestBody": {"required": True, "content": body},
        "responses": responses,
        **extra,
    }


def _bulk_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "application/json": {"schema": {"type": "array", "items": _ref(model)}},
        _NDJSON: {
            "schema": {"type": "string", "description": f"one {model.__name__} JSON per line"}
        },
    }


def _read(summary: str, ok: dict[str, Any], *, params: list[Any] | None = None) -> Any:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": _AUTH,
        "responses": {"200": {"description": "found", "content": _json(ok)}, **_COMMON_ERRORS},
    }
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _paths() -> dict[str, Any]:
    association = _json(_ref(AssociationBody))
    bulk_note = (
        "NDJSON (one item per line, streamed) or a JSON array; at most 10,000 items and 16 MiB. "
        "Valid items are queued as one job, invalid ones are listed by 0-based index in "
        "`rejected`. When no item is valid the answer is 400 `no_valid_items` with every "
        "item's error, and nothing is queued."
    )
    bulk_400 = {"400": _error("no valid item (or a malformed body)", BulkErrorBody)}
    entity_id = _path_param("id", "entity ID: <type>-<64 lowercase hex digits>")
    plain = {"text/plain": {"schema": {"type": "string"}}}
    return {
        f"{BASE}/association": {
            "post": _write("Queue one association", association, AckResponse),
            "delete": _write(
                "Queue the removal of an association type (all types when none is named)",
                association,
                AckResponse,
            ),
        },
        f"{BASE}/associations": {
            "post": _write(
                "Queue associations in bulk",
                _bulk_body(AssociationBody),
                BulkAckResponse,
                description=bulk_note,
                responses=bulk_400,
            )
        },
        f"{BASE}/entity": {
            "post": _write(
                "Queue an entity with nested children",
                _json(_ref(EntityBody)),
                EntityAckResponse,
            )
        },
        f"{BASE}/entities": {
            "post": _write(
                "Queue entities in bulk",
                _bulk_body(EntityBody),
                BulkAckResponse,
                description=bulk_note,
                responses=bulk_400,
            )
        },
        f"{BASE}/entity/{{id}}": {
            "get": _read("Read an entity (role user)", _ref(EntityResponse), params=[entity_id])
        },
        f"{BASE}/entity/{{id}}/associations": {
            "get": _read(
                "Associations at either end of an entity (role user)",
                _ref(AssociationListResponse),
                params=[
                    entity_id,
                    _query("direction", {"enum": ["out", "in", "both"]}, "default both"),
                    _query("associationType", {"type": "string"}, "only this type"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "page size, default 100",
                    ),
                    _query("cursor", {"type": "string"}, "nextCursor of the previous page"),
                ],
            )
        },
        f"{BASE}/jobs/{{jobID}}": {
            "get": _read(
                "Progress of a job (its owner or an admin)",
                _ref(JobStatusResponse),
                params=[_path_param("jobID", "job ID (UUIDv7)")],
            )
        },
        f"{BASE}/association-types": {
            "get": _read(
                "Default and custom association types (role user)",
                {"type": "array", "items": _ref(AssociationTypeResponse)},
            )
        },
        f"{BASE}/association-types/{{name}}": {
            "put": {
                "summary": "Add a custom association type or File Action (role admin)",
                "security": _AUTH,
                "parameters": [_path_param("name", "the new type's name")],
                "requestBody": {"required": True, "content": _json(_ref(AssociationTypeBody))},
                "responses": {
                    "201": {
                        "description": "added",
                        "content": _json(_ref(AssociationTypeResponse)),
                    },
                    "409": _error("a type with that name exists"),
                    "400": _error("invalid definition"),
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "summary": "Remove a custom association type (role admin)",
                "security": _AUTH,
                "parameters": [_path_param("name", "the type's name")],
                "responses": {
                    "204": {"description": "removed"},
                    "400": _error("a default type cannot be removed"),
                    "404": _error("no custom type of that name"),
                    **_COMMON_ERRORS,
                },
            },
        },
        f"{BASE}/definitions": {
            "get": _read(
                "The entity type catalogue (role user)",
                {"type": "array", "items": _ref(DefinitionResponse)},
            )
        },
        f"{BASE}/keys": {
            "post": {
                "summary": "Create an API key; its secret is shown only in this answer (admin)",
                "security": _AUTH,
                "requestBody": {"required": True, "content": _json(_ref(ApiKeyBody))},
                "responses": {
                    "201": {
                        "description": "created",
                        "content": _json(_ref(ApiKeyCreatedResponse)),
                    },
                    "400": _error("invalid body (unknown role, days below 1, ...)"),
                    **_COMMON_ERRORS,
                },
            },
            "get": _read(
                "API keys, without secrets or digests (admin)",
                {"type": "array", "items": _ref(ApiKeyResponse)},
            ),
        },
        f"{BASE}/keys/{{keyID}}": {
            "delete": {
                "summary": "Revoke an API key (admin)",
                "security": _AUTH,
                "parameters": [_path_param("keyID", "the api-key to revoke")],
                "responses": {"204": {"description": "revoked"}, **_COMMON_ERRORS},
            }
        },
        "/healthz": {
            "get": {
                "summary": "The process is alive",
                "responses": {
                    "200": {
                        "description": "alive",
                        "content": _json(
                            {"type": "object", "properties": {"status": {"const": "ok"}}}
                        ),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Broker and store are reachable",
                "responses": {
                    "200": {"description": "ready", "content": _json({"type": "object"})},
                    "503": _error("the broker or the store is unreachable"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text format", "content": plain}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": _json({"type": "object"})}
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process; treat it as read-only)."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in _MODELS], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "assoc-ingest",
            "version": "1.0.0",
            "description": "Asynchronous ingest of threat-intelligence associations. Writes "
            "answer 202 once the job is durably queued; poll GET /api/ingest/v1/jobs/{jobID}.",
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
                "apiSecret": {"type": "apiKey", "in": "header", "name": "api-secret"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }
