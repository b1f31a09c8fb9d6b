"""Pydantic models of the HTTP bodies of SPEC §3, with the camelCase names used on the wire.

Request bodies forbid unknown fields; field descriptions feed ``/openapi.json``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from schemas import examples
from schemas.catalogue import CATALOGUE, EntityType, Kind, NormalisationError
from schemas.provenance import (
    Confidence,
    SeenTime,
    SourceName,
    SourceResponse,
    TlpMarking,
    check_seen_order,
)
from schemas.rules import DEFAULT_CONTEXT_RELATIONSHIP, AssociationType, Rejection

DEFAULT_NESTED_MODE = "aggregation"
"""ThreatWinds' association mode of a nested entity when the client gives none."""


class _Request(BaseModel):
    """A request body: unknown fields are refused, and so are numbers and booleans written as
    something else (``"fileAction": 0``), which the JSON schema refuses too."""

    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _seen_in_order(body: Any) -> Any:
    check_seen_order(body)
    return body


# ---- requests ---------------------------------------------------------------------------------


class AssociationBody(_Request):
    """One association, ``entityID`` (primary end) -> ``relatedEntityID`` (non-primary end),
    with optional provenance. When either end is a context entity (a type with no kind, e.g.
    ``malware-family``), ``associationType`` is a free relationship name (``associated`` when
    none is given)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": list(examples.ASSOCIATION_BODIES.values())}
    )

    entityID: str = Field(
        max_length=256, description="ID of the primary entity: <type>-<64 lowercase hex digits>"
    )
    relatedEntityID: str = Field(
        max_length=256, description="ID of the non-primary entity: <type>-<64 lowercase hex>"
    )
    associationType: str | None = Field(
        default=None,
        max_length=256,
        description="name of the association type (case-insensitive); required only when "
        "several types fit the two entities. With a context entity at either end: any "
        "relationship name (e.g. 'indicates', 'uses', 'c2-of'; stored in lower case) except "
        "the name of a matrix type, default 'associated'",
    )
    source: SourceName = None
    confidence: Confidence = None
    tlp: TlpMarking = None
    firstSeen: SeenTime = None
    lastSeen: SeenTime = None

    _seen_order = model_validator(mode="after")(_seen_in_order)


class NestedEntity(_Request):
    """A child entity created with its parent and associated with it (either orientation)."""

    mode: str = Field(
        default=DEFAULT_NESTED_MODE,
        max_length=64,
        description="ThreatWinds' association mode (e.g. 'aggregation'); kept for "
        "compatibility, the association type is matched from the two entity types",
    )
    type: str = Field(max_length=64, description="entity type, e.g. 'ip', 'domain', 'sha256'")
    attributes: dict[str, Any] = Field(
        description="attributes; must include the main attribute, named like the type"
    )
    associations: list[NestedEntity] = Field(
        default_factory=list, description="children of this entity, to any depth"
    )
    associationType: str | None = Field(
        default=None,
        max_length=256,
        description="name of the association type between parent and child (case-insensitive; "
        "either orientation); without it a type fitting parent -> child wins over one fitting "
        "child -> parent, and several fitting the same orientation are ambiguous. For a context "
        "child (or parent) the relationship (e.g. 'c2-of'), default 'associated'",
    )
    source: SourceName = None
    confidence: Confidence = None
    tlp: TlpMarking = None
    firstSeen: SeenTime = None
    lastSeen: SeenTime = None

    _seen_order = model_validator(mode="after")(_seen_in_order)


class EntityBody(_Request):
    """An entity as ThreatWinds' ``POST /entity`` takes it, with nested children and optional
    provenance (a child without its own inherits its parent's)."""

    model_config = ConfigDict(json_schema_extra={"examples": list(examples.ENTITY_BODIES.values())})

    type: str = Field(max_length=64, description="entity type, e.g. 'ip', 'domain', 'url'")
    attributes: dict[str, Any] = Field(
        description="attributes; must include the main attribute, named like the type"
    )
    associations: list[NestedEntity] = Field(
        default_factory=list, description="child entities to create and associate"
    )
    reputation: StrictInt | None = Field(
        default=None, ge=-3, le=3, description="-3 (malicious) to 3 (benign); 0 is neutral"
    )
    tags: list[str] = Field(default_factory=list, description="free labels")
    visibleBy: list[str] = Field(default_factory=list, description="groups that may see the entity")
    correlate: list[str] = Field(
        default_factory=list,
        description="accepted for ThreatWinds compatibility; not used",
    )
    source: SourceName = None
    confidence: Confidence = None
    tlp: TlpMarking = None
    firstSeen: SeenTime = None
    lastSeen: SeenTime = None

    _seen_order = model_validator(mode="after")(_seen_in_order)


class AssociationTypeBody(_Request):
    """A custom association type or File Action (``PUT /association-types/{name}``)."""

    primary: Kind = Field(description="kind of the primary end")
    nonPrimary: list[Kind] = Field(min_length=1, description="kinds allowed at the other end")
    fileAction: StrictBool = Field(
        default=False, description="a File Action (primary must then be File)"
    )


def entity_main_value(body: EntityBody | NestedEntity) -> str:
    """The main attribute (``attributes[type]``) as text, ready for ``normalise``.

    Numbers are accepted and written in decimal (``15169`` -> "15169"); raises
    ``NormalisationError`` when the attribute is missing or is not a string or a number.
    """
    value = body.attributes.get(body.type)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    if value is None:
        reason = f"attributes must include the main attribute {body.type!r}"
    else:
        reason = f"the main attribute {body.type!r} must be a string or a number"
    raise NormalisationError(body.type, reason)


# ---- responses --------------------------------------------------------------------------------


class AckResponse(_Response):
    """A write was durably queued (the broker confirmed it)."""

    message: Literal["acknowledged"] = Field(default="acknowledged", description="always so")
    jobID: str = Field(description="ID of the job; poll GET /jobs/{jobID}")


class EntityAckResponse(AckResponse):
    """An entity was queued; ``entityID`` is its content-addressed ID."""

    entityID: str = Field(description="ID of the submitted (top-level) entity")


class BulkErrorDetail(_Response):
    code: str = Field(description="snake_case reason code, e.g. association_not_allowed")
    message: str = Field(description="what is wrong, in a sentence")
    detail: str | None = Field(
        default=None, description="association_not_allowed: what the matrix allows instead"
    )


class BulkItemError(_Response):
    """A bulk item refused at the front, by its position in the request."""

    index: int = Field(
        ge=0,
        description="0-based line number of the item in an NDJSON body, blank lines included; "
        "its position in a JSON array",
    )
    error: BulkErrorDetail


class BulkAckResponse(AckResponse):
    """A bulk request: the valid items were queued as one job, the others are listed."""

    accepted: int = Field(ge=0, description="number of items queued")
    rejected: list[BulkItemError] = Field(default_factory=list, description="items refused at once")


class ErrorDetail(_Response):
    code: str = Field(description="snake_case reason code")
    message: str = Field(description="what is wrong, in a sentence (also in x-error)")
    errorID: str = Field(description="UUID of this error (also in x-error-id), for support")
    errCode: str | None = Field(
        default=None, description="ThreatConnect code; '0x1001' for association_not_allowed"
    )
    candidates: list[str] | None = Field(
        default=None, description="fitting association types of an ambiguous request"
    )
    detail: str | None = Field(
        default=None,
        description="association_not_allowed: the two kinds in the order given and what the "
        "matrix allows between them",
    )

    @classmethod
    def from_rejection(cls, rejection: Rejection, error_id: str) -> ErrorDetail:
        """The error detail answering a matching ``Rejection``."""
        return cls(
            code=rejection.code.value,
            message=rejection.message,
            errorID=error_id,
            errCode=rejection.err_code,
            candidates=list(rejection.candidates) or None,
            detail=rejection.detail,
        )


class ErrorBody(_Response):
    """The body of every non-2xx response; dump with ``exclude_none=True``."""

    error: ErrorDetail


class JobCounts(_Response):
    """How many items of a job reached each outcome so far."""

    stored: int = 0
    duplicate: int = 0
    deleted: int = 0
    not_found: int = 0
    rejected: int = 0
    failed: int = Field(
        default=0, description="items whose handler failed; they are in the dead-letter queue"
    )


class JobItemError(_Response):
    index: int = Field(ge=0, description="position of the item in its job")
    code: str = Field(description="rejection code, or handler_error for a failed item")
    message: str = Field(description="why the item was rejected or failed")


class JobSummaryResponse(_Response):
    """Progress of a job without its item errors (an entry of ``GET /jobs``)."""

    jobID: str
    status: Literal["queued", "processing", "done", "failed"]
    kind: str = Field(description="association, association_delete or entity")
    total: int = Field(ge=0, description="number of items in the job")
    counts: JobCounts
    waiting: int = Field(
        default=0, ge=0, description="items without an outcome yet, waiting for an entity"
    )
    waitingFor: list[str] = Field(
        default_factory=list, description="entity IDs the waiting items wait for (up to 100)"
    )
    createdAt: datetime
    updatedAt: datetime


class JobStatusResponse(JobSummaryResponse):
    """Progress of a job (``GET /jobs/{jobID}``)."""

    errors: list[JobItemError] = Field(
        default_factory=list, description="up to 100 rejected or failed items"
    )


class JobListResponse(_Response):
    """A page of the caller's jobs, newest first (``GET /jobs``)."""

    items: list[JobSummaryResponse]
    nextCursor: str | None = Field(default=None, description="pass as ?cursor= for more")


class EntityResponse(_Response):
    """A stored entity (``GET /entity/{id}``)."""

    id: str
    type: str
    attributes: dict[str, Any]
    reputation: int | None = None
    tags: list[str] = Field(default_factory=list)
    visibleBy: list[str] = Field(default_factory=list)
    createdAt: datetime
    lastSeen: datetime
    sources: list[SourceResponse] = Field(
        default_factory=list, description="who reported it: one entry per source and per user"
    )


class OtherEntity(_Response):
    """The entity at the other end of an association, as a listing shows it."""

    id: str
    type: str
    summary: str | None = Field(default=None, description="its main attribute, when stored")


class AssociationItemResponse(_Response):
    """One association seen from the entity that was asked about."""

    id: str = Field(description="association ID: sha3_256 hex of entityID + relatedEntityID")
    entityID: str = Field(description="primary end")
    relatedEntityID: str = Field(description="non-primary end")
    direction: Literal["out", "in"] = Field(
        description="'out' when the asked entity is the primary end"
    )
    otherEntity: OtherEntity
    associationName: str = Field(
        description="the (first) association type name, or relationship name of a context "
        "association"
    )
    associationNames: list[str] = Field(description="every type name on this pair")
    fileAction: bool
    createdAt: datetime
    lastSeen: datetime
    submissions: int = Field(ge=0, description="how many times it was submitted")
    sources: list[SourceResponse] = Field(
        default_factory=list,
        description="who reported it: one entry per source (the highest confidence, the "
        "widest first/last seen, the latest TLP) and per submitting user",
    )


class AssociationListResponse(_Response):
    model_config = ConfigDict(
        json_schema_extra={"examples": list(examples.ASSOCIATION_LISTS.values())}
    )

    items: list[AssociationItemResponse]
    nextCursor: str | None = Field(default=None, description="pass as ?cursor= for more")


class AssociationTypeResponse(_Response):
    """An association type or File Action (``GET /association-types``)."""

    name: str
    primary: Kind
    nonPrimary: list[Kind]
    fileAction: bool
    custom: bool

    @classmethod
    def from_type(cls, association_type: AssociationType) -> AssociationTypeResponse:
        return cls(
            name=association_type.name,
            primary=association_type.primary,
            nonPrimary=sorted(association_type.non_primary),
            fileAction=association_type.file_action,
            custom=association_type.custom,
        )


CONTEXT_NOTE = (
    "Context associations: a pair with a context entity (a type with no kind, listed in "
    "contextTypes) at either end is always allowed, in the direction given, under any "
    "relationship name (folded to lower case, e.g. 'indicates', 'uses', 'c2-of') except the "
    f"name of a matrix type or File Action; '{DEFAULT_CONTEXT_RELATIONSHIP}' when none is "
    "given. The matrix governs only pairs whose two ends have a kind."
)


class ContextRelationshipResponse(_Response):
    """The last entry of ``GET /association-types``: not a type but the rule for context
    associations, whose relationship names are free (``context`` is true)."""

    name: Literal["associated"] = Field(
        default="associated", description="the relationship name used when none is given"
    )
    primary: None = Field(default=None, description="any entity type: no kind applies")
    nonPrimary: list[Kind] = Field(default_factory=list, description="empty: no kind applies")
    fileAction: Literal[False] = False
    custom: Literal[False] = False
    context: Literal[True] = Field(default=True, description="this entry is the context rule")
    freeName: Literal[True] = Field(
        default=True, description="any relationship name is accepted (see description)"
    )
    contextTypes: list[str] = Field(description="the entity types with no kind")
    description: str = CONTEXT_NOTE

    @classmethod
    def default(cls) -> ContextRelationshipResponse:
        return cls(contextTypes=sorted(name for name, row in CATALOGUE.items() if row.kind is None))


class DefinitionResponse(_Response):
    """One entry of the entity type catalogue (``GET /definitions``)."""

    type: str
    dataType: str
    kind: Kind | None = Field(description="matrix kind; null when it cannot be associated")
    description: str

    @classmethod
    def from_entity_type(cls, row: EntityType) -> DefinitionResponse:
        return cls(
            type=row.name,
            dataType=row.data_type.value,
            kind=row.kind,
            description=row.description,
        )
