"""The HTTP bodies of ``POST /stix`` and ``GET /entity/{id}/stix`` (SPEC §3), for the route
table and ``/openapi.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.http import AckResponse, BulkErrorDetail, ErrorDetail


class StixBundle(BaseModel):
    """A STIX 2.1 bundle (a bare JSON array of STIX objects is accepted as well)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["bundle"] = Field(description="always 'bundle'")
    id: str = Field(description="bundle--<UUID>")
    objects: list[dict[str, Any]] = Field(default_factory=list, description="the STIX objects")


class StixObjectError(BaseModel):
    """A STIX object that is not represented, by its position in the bundle, with why."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="0-based position of the object in the bundle")
    id: str | None = Field(default=None, description="its STIX id")
    type: str | None = Field(default=None, description="its STIX type")
    error: BulkErrorDetail = Field(
        description="why: unsupported_type, pattern_too_complex, unsupported_pattern, "
        "invalid_pattern, dangling_reference, association_not_allowed, self_association, "
        "invalid_entity, provenance (an identity or TLP marking, read as the source or TLP "
        "of others), ..."
    )


class StixObjectCounts(BaseModel):
    """How many objects of the bundle each account covers (they add up to ``total``)."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(ge=0)
    entity: int = Field(ge=0, description="objects that named at least one entity")
    association: int = Field(ge=0, description="objects that named none but made links")
    notRepresented: int = Field(ge=0, description="objects listed in rejected")


class StixAckResponse(AckResponse):
    """A bundle was queued as one job: its entities and associations are the job's items."""

    accepted: int = Field(
        ge=0,
        description="items queued: one per entity and per association, for each source that "
        "stated it (the store keeps one entry per source)",
    )
    entities: int = Field(ge=0, description="distinct entities")
    associations: int = Field(ge=0, description="distinct associations")
    entityItems: int = Field(
        ge=0, description="entity items of the job: indexes 0..entityItems-1, associations after"
    )
    objects: StixObjectCounts
    rejected: list[StixObjectError] = Field(
        default_factory=list, description="every object not represented, with its reason"
    )
    notes: dict[str, int] = Field(
        default_factory=dict,
        description="values and links left out of represented objects, by reason (a private "
        "address among an indicator's, a comparison on a custom property, ...)",
    )


class StixRejectBody(BaseModel):
    """A refused bundle (400): nothing was queued. When no object could be represented
    (``no_valid_items``) every object's reason; a body, key or credentials refused as a whole
    carry the error alone."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail
    accepted: int = Field(default=0, description="always 0: nothing was queued")
    rejected: list[StixObjectError] = Field(
        default_factory=list, description="no_valid_items: every object, with its reason"
    )


class StixExport(BaseModel):
    """A STIX 2.1 bundle: the entity, its associations and the entities at their other ends."""

    model_config = ConfigDict(extra="allow")

    type: Literal["bundle"]
    id: str
    objects: list[dict[str, Any]]
