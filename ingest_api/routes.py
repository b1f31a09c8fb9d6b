"""Every route of the front, in one table (``ROUTES``): method, path and view, and what the
OpenAPI document says of it. ``app.py`` registers the table, ``openapi.py`` renders it; no
other list of paths exists.

A route states its request body, its success answer, the parameters of its path and query,
whether it needs credentials, and every error status it can answer (``_guarded`` adds those
of the credentials guard, 400 ``ambiguous_credentials``, 401, 403 and 503 when the store
cannot check a key, and of the router, 404 and 405, to a route's own; a status both give is
documented once, its descriptions joined).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp.typedefs import Handler
from pydantic import BaseModel

from ingest_api.http_models import (
    ApiKeyBody,
    ApiKeyCreatedResponse,
    ApiKeyResponse,
    BulkErrorBody,
)
from ingest_api.idempotency import HEADER, KEY_PATTERN, REPLAYED_HEADER
from ingest_api.paths import BASE
from ingest_api.views import admin, docs, operations, reads, stix, writes
from schemas.http import (
    AckResponse,
    AssociationBody,
    AssociationListResponse,
    AssociationTypeBody,
    AssociationTypeResponse,
    BulkAckResponse,
    ContextRelationshipResponse,
    DefinitionResponse,
    EntityAckResponse,
    EntityBody,
    EntityResponse,
    ErrorBody,
    JobListResponse,
    JobStatusResponse,
)
from schemas.stix.http import StixAckResponse, StixBundle, StixExport, StixRejectBody

__all__ = [
    "ROUTES",
    "Failure",
    "Parameter",
    "RequestBody",
    "Route",
    "Success",
]


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter of the path (required), of the query or a header (optional)."""

    name: str
    location: Literal["path", "query", "header"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class RequestBody:
    """A required JSON body of ``model``; a ``bulk`` body is a JSON array of them or NDJSON,
    one per line."""

    model: type[BaseModel]
    bulk: bool = False


@dataclass(frozen=True, slots=True)
class Success:
    """The answer when the route succeeds."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    """The JSON body (None: ``schema``, or no body)."""
    many: bool = False
    """The body is a JSON array of ``model``."""
    alternatives: tuple[type[BaseModel], ...] = ()
    """Other models an item of the body may be instead of ``model`` (``anyOf``)."""
    schema: Mapping[str, Any] | None = None
    """The JSON schema of a body no model describes, sent as ``media_type``."""
    media_type: str = "application/json"
    location: str | None = None
    """What the ``Location`` header names, when the answer has one."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An error status the route answers, with the standard error body (or ``model``)."""

    status: int
    description: str
    model: type[BaseModel] = ErrorBody
    retry_after: bool = False
    """The answer carries ``Retry-After`` (seconds)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path, served by ``handler``."""

    method: str
    path: str
    handler: Handler
    summary: str
    success: Success
    failures: tuple[Failure, ...] = ()
    body: RequestBody | None = None
    parameters: tuple[Parameter, ...] = ()
    description: str | None = None
    authenticated: bool = True
    """The caller must send credentials (``require_role`` or ``authenticate`` in the view)."""


# ---- shared facts -----------------------------------------------------------------------------

_GUARD_AND_ROUTER = (
    Failure(400, "ambiguous_credentials: both api-key/api-secret and Authorization were sent"),
    Failure(401, "no or wrong credentials (with WWW-Authenticate)"),
    Failure(403, "the caller lacks the role"),
    Failure(404, "unknown route"),
    Failure(405, "method not allowed (with Allow)"),
    Failure(503, "store_unavailable: the store cannot be reached", retry_after=True),
)


def _guarded(*failures: Failure) -> tuple[Failure, ...]:
    """``failures`` then the guard's and the router's answers, one per status: the model of
    the first of a status, the descriptions of all joined, ``Retry-After`` if any has it."""
    chosen: dict[int, Failure] = {}
    for failure in (*failures, *_GUARD_AND_ROUTER):
        found = chosen.get(failure.status)
        if found is None:
            chosen[failure.status] = failure
        else:
            chosen[failure.status] = Failure(
                failure.status,
                f"{found.description}; or {failure.description}",
                found.model,
                found.retry_after or failure.retry_after,
            )
    return tuple(sorted(chosen.values(), key=lambda f: f.status))


def _open(*failures: Failure) -> tuple[Failure, ...]:
    """The answers of a route without credentials: its own, and the router's 405."""
    return (*failures, Failure(405, "method not allowed (with Allow)"))


_BODY_FAILURES = (
    Failure(413, "body larger than the limit (16 MiB)"),
    Failure(415, "wrong Content-Type"),
)
_WRITE_FAILURES = (
    Failure(
        400,
        "malformed JSON, wrong shape, invalid entity ID or entity, self-association, unknown "
        "or ambiguous association type, association_not_allowed (errCode 0x1001, with a "
        "detail of what the matrix allows), invalid_idempotency_key (the Idempotency-Key "
        "header is not 1-255 visible ASCII characters)",
    ),
    Failure(
        413,
        "body larger than the limit (16 MiB), too many bulk items (10,000), or items that "
        "cannot travel in one queue message (too_large_for_one_message, naming the limit)",
    ),
    Failure(415, "wrong Content-Type"),
    Failure(
        422,
        "idempotency_key_reused: the Idempotency-Key was used for another request (another "
        "body, method or path) within the window",
    ),
    Failure(
        503,
        "the broker could not confirm in time (broker_unavailable, queue_full), or the store "
        "that keeps Idempotency-Keys cannot be reached (store_unavailable); retry with the "
        "same key",
        retry_after=True,
    ),
)
_IDEMPOTENCY_KEY = Parameter(
    HEADER,
    "header",
    "1-255 visible ASCII characters chosen by the client, one per logical request and reused "
    "on every retry of it. The same key from the same user within INGEST_IDEMPOTENCY_WINDOW "
    "(default 24 h) answers with the first request's jobID (with the header "
    f"`{REPLAYED_HEADER}: true`) and the items are processed once, however the first attempt "
    "ended (202, 503 or no answer); the same key with another body is a 422.",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
)
_BULK_FAILURES = _guarded(
    Failure(
        400,
        "no_valid_items (every item's error under `rejected`), or a malformed body",
        BulkErrorBody,
    ),
    *_WRITE_FAILURES,
)
_BULK_NOTE = (
    "NDJSON (one item per line, streamed) or a JSON array; at most 10,000 items and 16 MiB. "
    "Valid items are queued as one job, invalid ones are listed in `rejected` by index: the "
    "0-based line number in the body, blank lines included (in a JSON array, the position). "
    "When no item is valid the answer is 400 `no_valid_items` with every item's error, and "
    "nothing is queued."
)
_JOB = f"{BASE}/jobs/{{jobID}}"


def _queued(ack: type[BaseModel]) -> Success:
    return Success(202, "durably queued (broker confirm received)", ack, location=_JOB)


def _found(model: type[BaseModel], *, many: bool = False) -> Success:
    return Success(200, "found", model, many=many)


def _query(name: str, schema: Mapping[str, Any], description: str) -> Parameter:
    return Parameter(name, "query", description, schema)


_ENTITY_ID = Parameter("id", "path", "entity ID: <type>-<64 lowercase hex digits>")
_LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": reads.MAX_PAGE_SIZE},
    f"page size, default {reads.DEFAULT_PAGE_SIZE}",
)
_CURSOR = _query("cursor", {"type": "string"}, "nextCursor of the previous page")
_ENTITY_ABSENT = Failure(404, "entity_not_found")


# ---- the table --------------------------------------------------------------------------------

ROUTES: tuple[Route, ...] = (
    # writes
    Route(
        "POST",
        f"{BASE}/association",
        writes.post_association,
        "Queue one association",
        success=_queued(AckResponse),
        failures=_guarded(*_WRITE_FAILURES),
        body=RequestBody(AssociationBody),
        parameters=(_IDEMPOTENCY_KEY,),
    ),
    Route(
        "DELETE",
        f"{BASE}/association",
        writes.delete_association,
        "Queue the removal of an association type (all types when none is named)",
        success=_queued(AckResponse),
        failures=_guarded(*_WRITE_FAILURES),
        body=RequestBody(AssociationBody),
        parameters=(_IDEMPOTENCY_KEY,),
    ),
    Route(
        "POST",
        f"{BASE}/associations",
        writes.post_associations,
        "Queue associations in bulk",
        success=_queued(BulkAckResponse),
        failures=_BULK_FAILURES,
        body=RequestBody(AssociationBody, bulk=True),
        description=_BULK_NOTE,
        parameters=(_IDEMPOTENCY_KEY,),
    ),
    Route(
        "POST",
        f"{BASE}/entity",
        writes.post_entity,
        "Queue an entity with nested children",
        success=_queued(EntityAckResponse),
        failures=_guarded(*_WRITE_FAILURES),
        body=RequestBody(EntityBody),
        parameters=(_IDEMPOTENCY_KEY,),
    ),
    Route(
        "POST",
        f"{BASE}/entities",
        writes.post_entities,
        "Queue entities in bulk",
        success=_queued(BulkAckResponse),
        failures=_BULK_FAILURES,
        body=RequestBody(EntityBody, bulk=True),
        description=_BULK_NOTE,
        parameters=(_IDEMPOTENCY_KEY,),
    ),
    Route(
        "POST",
        f"{BASE}/stix",
        stix.post_stix,
        "Queue a STIX 2.1 bundle's entities and associations as one job",
        success=_queued(StixAckResponse),
        failures=_guarded(
            Failure(
                400,
                "malformed JSON, not a bundle, no object represented, ambiguous_credentials, "
                "invalid_idempotency_key",
                StixRejectBody,
            ),
            *_WRITE_FAILURES,
        ),
        body=RequestBody(StixBundle),
        parameters=(_IDEMPOTENCY_KEY,),
        description="A bundle, or a bare JSON array of STIX objects (application/json or "
        "application/stix+json), of at most 10,000 objects and 16 MiB. Observables, malware, "
        "threat actors, intrusion sets, campaigns, vulnerabilities and tools become entities; "
        "indicator patterns of equality comparisons become their entities, linked to what the "
        "indicator indicates; relationships, observed-data wrappers and embedded references "
        "become associations (matrix types where both ends have a kind, in either "
        "orientation; context associations named by the relationship otherwise). Provenance "
        "from created_by_ref, confidence, object_marking_refs and first/last seen. Every "
        "object not represented is listed in `rejected` with its reason.",
    ),
    # reads
    Route(
        "GET",
        f"{BASE}/entity/{{id}}",
        reads.get_entity,
        "Read an entity (role user)",
        success=_found(EntityResponse),
        failures=_guarded(Failure(400, "invalid_entity_id"), _ENTITY_ABSENT),
        parameters=(_ENTITY_ID,),
    ),
    Route(
        "GET",
        f"{BASE}/entity",
        reads.lookup_entity,
        "Look an entity up by its type and main value (role user)",
        success=_found(EntityResponse),
        failures=_guarded(
            Failure(
                400,
                "invalid_query (type or value missing), unknown_entity_type, invalid_entity "
                "(the value is not valid for the type)",
            ),
            _ENTITY_ABSENT,
        ),
        parameters=(
            _query("type", {"type": "string"}, "entity type, e.g. ip, domain, url, sha256"),
            _query(
                "value",
                {"type": "string"},
                "main value as written anywhere (defanged, any case): it is normalised first",
            ),
        ),
        description="Saves computing `<type>-<sha3-256 of the normalised value>` by hand: the "
        "value is normalised as on submission (refanged, lowercased where the type folds case) "
        "and the entity of that ID returned.",
    ),
    Route(
        "GET",
        f"{BASE}/entity/{{id}}/associations",
        reads.get_entity_associations,
        "Associations at either end of an entity (role user)",
        success=_found(AssociationListResponse),
        failures=_guarded(
            Failure(
                400,
                "invalid_entity_id, invalid_direction, invalid_limit, unknown_association_type, "
                "invalid_cursor",
            )
        ),
        parameters=(
            _ENTITY_ID,
            _query("direction", {"enum": ["out", "in", "both"]}, "default both"),
            _query("associationType", {"type": "string"}, "only this type"),
            _LIMIT,
            _CURSOR,
        ),
    ),
    Route(
        "GET",
        f"{BASE}/entity/{{id}}/stix",
        stix.get_entity_stix,
        "The entity, its associations and their other ends as a STIX 2.1 bundle (role user)",
        success=_found(StixExport),
        failures=_guarded(Failure(400, "invalid_entity_id, invalid_limit"), _ENTITY_ABSENT),
        parameters=(
            _ENTITY_ID,
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": stix.MAX_EXPORT_LIMIT},
                f"associations exported at most, default {stix.DEFAULT_EXPORT_LIMIT} "
                "(X-Truncated: true when there are more)",
            ),
        ),
    ),
    Route(
        "GET",
        f"{BASE}/jobs",
        reads.list_jobs,
        "The caller's recent jobs, newest first (an admin's: everyone's)",
        success=_found(JobListResponse),
        failures=_guarded(Failure(400, "invalid_limit, invalid_cursor")),
        parameters=(_LIMIT, _CURSOR),
    ),
    Route(
        "GET",
        _JOB,
        reads.get_job,
        "Progress of a job (its owner or an admin)",
        success=_found(JobStatusResponse),
        failures=_guarded(
            Failure(400, "invalid_job_id"),
            Failure(404, "job_not_found (unknown, or another user's)"),
        ),
        parameters=(Parameter("jobID", "path", "job ID (UUIDv7)"),),
    ),
    Route(
        "GET",
        f"{BASE}/association-types",
        reads.get_association_types,
        "Default and custom association types (role user)",
        success=Success(
            200,
            "found: the types, then the entry of context associations (context: true)",
            AssociationTypeResponse,
            many=True,
            alternatives=(ContextRelationshipResponse,),
        ),
        failures=_guarded(),
        description="The matrix: each type's primary kind and allowed non-primary kinds. The "
        "last entry is not a type: it says that an association with a context entity (a type "
        "with no kind, listed in its contextTypes) at either end takes any relationship name "
        "except a matrix type's, 'associated' by default.",
    ),
    # administration
    Route(
        "PUT",
        f"{BASE}/association-types/{{name}}",
        admin.put_association_type,
        "Add a custom association type or File Action (role admin)",
        success=Success(
            201,
            "added",
            AssociationTypeResponse,
            location=f"{BASE}/association-types/{{name}}",
        ),
        description="A custom type's name is a matrix name from then on: it is refused as the "
        "relationship name of a context association (all other names stay free). The name "
        "'associated' (the default context relationship) cannot be taken.",
        failures=_guarded(
            Failure(409, "a type with that name exists"),
            Failure(400, "invalid definition or malformed JSON"),
            *_BODY_FAILURES,
        ),
        body=RequestBody(AssociationTypeBody),
        parameters=(Parameter("name", "path", "the new type's name"),),
    ),
    Route(
        "DELETE",
        f"{BASE}/association-types/{{name}}",
        admin.delete_association_type,
        "Remove a custom association type (role admin)",
        success=Success(204, "removed"),
        failures=_guarded(
            Failure(400, "a default type cannot be removed"),
            Failure(404, "no custom type of that name"),
        ),
        parameters=(Parameter("name", "path", "the type's name"),),
    ),
    Route(
        "GET",
        f"{BASE}/definitions",
        reads.get_definitions,
        "The entity type catalogue (role user)",
        success=_found(DefinitionResponse, many=True),
        failures=_guarded(),
    ),
    Route(
        "POST",
        f"{BASE}/keys",
        admin.create_key,
        "Create an API key; its secret is shown only in this answer (admin)",
        success=Success(201, "created", ApiKeyCreatedResponse),
        failures=_guarded(
            Failure(400, "invalid body (unknown role, days below 1, ...) or malformed JSON"),
            *_BODY_FAILURES,
        ),
        body=RequestBody(ApiKeyBody),
    ),
    Route(
        "GET",
        f"{BASE}/keys",
        admin.list_keys,
        "API keys, without secrets or digests (admin)",
        success=_found(ApiKeyResponse, many=True),
        failures=_guarded(),
    ),
    Route(
        "DELETE",
        f"{BASE}/keys/{{keyID}}",
        admin.revoke_key,
        "Revoke an API key (admin)",
        success=Success(204, "revoked"),
        failures=_guarded(Failure(404, "api_key_not_found")),
        parameters=(Parameter("keyID", "path", "the api-key to revoke"),),
    ),
    # operations
    Route(
        "GET",
        "/healthz",
        operations.healthz,
        "The process is alive",
        success=Success(
            200, "alive", schema={"type": "object", "properties": {"status": {"const": "ok"}}}
        ),
        failures=_open(),
        authenticated=False,
    ),
    Route(
        "GET",
        "/readyz",
        operations.readyz,
        "Broker and store are reachable",
        success=Success(200, "ready", schema={"type": "object"}),
        failures=_open(Failure(503, "the broker or the store is unreachable")),
        authenticated=False,
    ),
    Route(
        "GET",
        "/metrics",
        operations.metrics,
        "Prometheus metrics",
        success=Success(
            200, "Prometheus text format", schema={"type": "string"}, media_type="text/plain"
        ),
        failures=_open(),
        authenticated=False,
    ),
    Route(
        "GET",
        "/openapi.json",
        operations.openapi,
        "This document",
        success=Success(200, "OpenAPI 3.1", schema={"type": "object"}),
        failures=_open(),
        authenticated=False,
    ),
    # the page a person reads
    Route(
        "GET",
        docs.DOCS_PATH,
        docs.docs_page,
        "The API page: this document rendered by Swagger UI, served from the front itself",
        success=Success(200, "an HTML page", schema={"type": "string"}, media_type="text/html"),
        failures=_open(),
        authenticated=False,
    ),
    Route(
        "GET",
        f"{docs.DOCS_PATH}/assets/{{name}}",
        docs.docs_asset,
        "A file of the API page (script, style sheet, icon)",
        success=Success(200, "the file", schema={"type": "string"}, media_type="*/*"),
        failures=_open(Failure(404, "asset_not_found")),
        parameters=(Parameter("name", "path", f"one of {', '.join(docs.ASSETS)}"),),
        authenticated=False,
    ),
    Route(
        "GET",
        "/",
        docs.root,
        "Redirects to the API page",
        success=Success(302, "to /docs", location=docs.DOCS_PATH),
        failures=_open(),
        authenticated=False,
    ),
)
