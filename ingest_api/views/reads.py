"""Read endpoints (SPEC §3): entities, their associations, job status, association types and
the entity type catalogue. Everything is read through the ``Store`` interface (or the rules
cache), never from the broker.

Errors: a malformed entity or job ID is a 400 (``invalid_entity_id``, ``invalid_job_id``), and
so is a lookup by value whose type or value is missing or invalid; an absent entity is a 404
``entity_not_found``; a job that does not exist *or belongs to another
user* is a 404 ``job_not_found`` (existence is not leaked); a store that cannot be reached is a
503 ``store_unavailable`` with ``Retry-After``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from aiohttp import web

from ingest_api.auth import authenticate, require_role
from ingest_api.errors import ApiError, json_response, store_errors
from ingest_api.responses import as_datetime, dump
from ingest_api.state import JOB_REGISTRY, RULES, STORE
from schemas import (
    CATALOGUE,
    InvalidEntityId,
    NormalisationError,
    entity_id_of_normalised,
    normalise,
    parse_entity_id,
)
from schemas.http import (
    AssociationItemResponse,
    AssociationListResponse,
    AssociationTypeResponse,
    ContextRelationshipResponse,
    DefinitionResponse,
    EntityResponse,
    JobCounts,
    JobItemError,
    JobListResponse,
    JobStatusResponse,
    JobSummaryResponse,
    OtherEntity,
)
from schemas.provenance import SourceResponse
from schemas.rules import Rejection
from workers.ground.errors import PermanentError
from workers.store.logic import job_status
from workers.store.records import (
    AssociationRecord,
    Direction,
    JobStatus,
    SourceEntry,
    StoredEntity,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "get_association_types",
    "get_definitions",
    "get_entity",
    "get_entity_associations",
    "get_job",
    "list_jobs",
    "lookup_entity",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MAX_CURSOR_LENGTH = 512


def _entity_id_param(request: web.Request) -> str:
    eid = request.match_info["id"]
    try:
        parse_entity_id(eid)
    except InvalidEntityId as exc:
        raise ApiError(400, "invalid_entity_id", f"{exc}.") from exc
    return eid


def summary_of(entity: StoredEntity | None) -> str | None:
    """The main attribute (``attributes[type]``) of a stored entity as text, else None."""
    if entity is None:
        return None
    value = entity.attributes.get(entity.type)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else as_datetime(seconds)


def sources_response(entries: tuple[SourceEntry, ...]) -> list[SourceResponse]:
    """The ``sources`` of a read, in the store's order."""
    return [
        SourceResponse(
            name=entry.name,
            kind="user" if entry.kind == "user" else "source",
            confidence=entry.confidence,
            tlp=entry.tlp,
            firstSeen=_time(entry.first_seen),
            lastSeen=_time(entry.last_seen),
        )
        for entry in entries
    ]


# ---- entities ---------------------------------------------------------------------------------


def entity_response(entity: StoredEntity) -> EntityResponse:
    return EntityResponse(
        id=entity.id,
        type=entity.type,
        attributes=entity.attributes,
        reputation=entity.reputation,
        tags=list(entity.tags),
        visibleBy=list(entity.visible_by),
        createdAt=as_datetime(entity.created_at),
        lastSeen=as_datetime(entity.last_seen),
        sources=sources_response(entity.sources),
    )


@require_role("user")
async def get_entity(request: web.Request) -> web.StreamResponse:
    """``GET /entity/{id}``: the stored entity; 400 on a malformed ID, 404 when absent."""
    eid = _entity_id_param(request)
    with store_errors():
        found = await request.app[STORE].get_entity(eid)
    if found is None:
        raise ApiError(404, "entity_not_found", f"There is no entity {eid}.")
    return json_response(dump(entity_response(found)))


_MAX_LOOKUP_VALUE = 64 * 1024


@require_role("user")
async def lookup_entity(request: web.Request) -> web.StreamResponse:
    """``GET /entity?type=&value=``: the stored entity whose main attribute is ``value`` once
    normalised (refanged, case folded, ... as in SPEC §1), so that clients need not compute
    the SHA3-256 of an entity ID themselves; 400 when a parameter is missing or the value is
    not valid for the type, 404 when no such entity is stored."""
    type_name = request.query.get("type", "").strip()
    value = request.query.get("value", "")
    if not type_name or not value.strip():
        raise ApiError(
            400, "invalid_query", "Give the entity type and its main value: ?type=ip&value=..."
        )
    if len(value) > _MAX_LOOKUP_VALUE:
        raise ApiError(400, "invalid_entity", f"The value is longer than {_MAX_LOOKUP_VALUE}.")
    try:
        normalised = normalise(type_name, value)
    except NormalisationError as exc:
        raise ApiError(400, type(exc).code, f"{exc}.") from exc
    eid = entity_id_of_normalised(type_name, normalised)
    with store_errors():
        found = await request.app[STORE].get_entity(eid)
    if found is None:
        raise ApiError(
            404, "entity_not_found", f"There is no {type_name} {normalised!r} (ID {eid})."
        )
    return json_response(dump(entity_response(found)))


# ---- associations -----------------------------------------------------------------------------


def _direction(request: web.Request) -> Direction:
    raw = request.query.get("direction", Direction.BOTH.value)
    try:
        return Direction(raw.strip().lower())
    except ValueError:
        raise ApiError(
            400, "invalid_direction", "direction must be one of out, in or both."
        ) from None


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ApiError(
            400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}."
        )
    return limit


def _association_type(request: web.Request) -> str | None:
    """The type named by ``?associationType=``: a matrix type's canonical name, else a context
    relationship name (folded to lower case, as stored)."""
    raw = request.query.get("associationType")
    if raw is None or not raw.strip():
        return None
    rules = request.app[RULES].rules
    known = rules.get(raw)
    if known is not None:
        return known.name
    relationship = rules.relationship(raw)
    if isinstance(relationship, Rejection):
        raise ApiError(400, relationship.code.value, relationship.message)
    return relationship.name


def _cursor(request: web.Request) -> str | None:
    cursor = request.query.get("cursor")
    if cursor is None or cursor == "":
        return None
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
    return cursor


def association_item(
    record: AssociationRecord, asked: str, others: dict[str, StoredEntity]
) -> AssociationItemResponse:
    """``record`` seen from the entity ``asked``: ``out`` when it is the primary end."""
    outgoing = record.entity_id == asked
    other_id = record.related_id if outgoing else record.entity_id
    other_type = record.related_type if outgoing else record.entity_type
    names = list(record.association_types)
    return AssociationItemResponse(
        id=record.id,
        entityID=record.entity_id,
        relatedEntityID=record.related_id,
        direction="out" if outgoing else "in",
        otherEntity=OtherEntity(
            id=other_id, type=other_type, summary=summary_of(others.get(other_id))
        ),
        associationName=names[0] if names else "",
        associationNames=names,
        fileAction=record.file_action,
        createdAt=as_datetime(record.created_at),
        lastSeen=as_datetime(record.last_seen),
        submissions=record.submissions,
        sources=sources_response(record.sources),
    )


@require_role("user")
async def get_entity_associations(request: web.Request) -> web.StreamResponse:
    """``GET /entity/{id}/associations``: one page of the edges at the chosen end(s).

    Query: ``direction`` (out|in|both, default both), ``associationType`` (a known type name,
    any case, or a context relationship name), ``limit`` (1..1000, default 100), ``cursor``
    (``nextCursor`` of the previous page). Each item names the other entity with its summary
    (its main attribute, read for the whole page in one store call; null when that entity is
    not stored) and the sources of the association.
    """
    eid = _entity_id_param(request)
    direction = _direction(request)
    limit = _limit(request)
    type_name = _association_type(request)
    cursor = _cursor(request)
    store = request.app[STORE]
    with store_errors():
        try:
            page, next_cursor = await store.list_associations(
                eid, direction=direction, association_type=type_name, limit=limit, cursor=cursor
            )
        except PermanentError as exc:
            raise ApiError(400, exc.code, exc.message) from exc
        other_ids = {r.related_id if r.entity_id == eid else r.entity_id for r in page}
        others = await store.get_entities(other_ids) if other_ids else {}
    response = AssociationListResponse(
        items=[association_item(record, eid, others) for record in page], nextCursor=next_cursor
    )
    return json_response(dump(response))


# ---- jobs -------------------------------------------------------------------------------------


def job_summary(job: JobStatus) -> JobSummaryResponse:
    counts = JobCounts(**{name: job.counts.get(name, 0) for name in JobCounts.model_fields})
    return JobSummaryResponse(
        jobID=job.job_id,
        status=job.status,
        kind=job.kind,
        total=job.total,
        counts=counts,
        waiting=job.waiting,
        waitingFor=list(job.waiting_for),
        createdAt=as_datetime(job.created_at),
        updatedAt=as_datetime(job.updated_at if job.updated_at is not None else job.created_at),
    )


def job_response(job: JobStatus) -> JobStatusResponse:
    return JobStatusResponse(
        **dict(job_summary(job)),
        errors=[JobItemError(index=e.index, code=e.code, message=e.message) for e in job.errors],
    )


async def list_jobs(request: web.Request) -> web.StreamResponse:
    """``GET /jobs``: the caller's jobs (an admin's: everyone's) still kept, newest first, with
    their counts; ``limit`` (1..1000, default 100) and ``cursor`` page through them. Like
    ``GET /jobs/{jobID}``, any authenticated caller may read their own jobs."""
    principal = await authenticate(request)
    limit = _limit(request)
    cursor = _cursor(request)
    owner = None if principal.has_role("admin") else principal.user_id
    with store_errors():
        try:
            page, next_cursor = await request.app[STORE].list_jobs(
                owner, limit=limit, cursor=cursor
            )
        except PermanentError as exc:
            raise ApiError(400, exc.code, exc.message) from exc
    response = JobListResponse(items=[job_summary(job) for job in page], nextCursor=next_cursor)
    return json_response(dump(response))


async def get_job(request: web.Request) -> web.StreamResponse:
    """``GET /jobs/{jobID}``: status, counts and the first 100 item errors, for the job's owner
    or an admin; 404 for an unknown job and for another user's job alike."""
    principal = await authenticate(request)
    raw = request.match_info["jobID"]
    try:
        job_id = str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(400, "invalid_job_id", "A job ID is a UUID.") from None
    with store_errors():
        job = await request.app[STORE].get_job(job_id)
    if job is None:  # accepted here a moment ago, its registration not written yet
        header = request.app[JOB_REGISTRY].unwritten(job_id)
        job = None if header is None else job_status(header, (), ())
    if job is None or not (job.owner == principal.user_id or principal.has_role("admin")):
        raise ApiError(404, "job_not_found", f"There is no job {job_id}.")
    return json_response(dump(job_response(job)))


# ---- vocabulary -------------------------------------------------------------------------------


@require_role("user")
async def get_association_types(request: web.Request) -> web.StreamResponse:
    """``GET /association-types``: the defaults then the custom types, as this front applies
    them now, then the entry saying that context associations take free names."""
    rules = request.app[RULES].rules
    listed = [dump(AssociationTypeResponse.from_type(t)) for t in rules.types]
    listed.append(dump(ContextRelationshipResponse.default()))
    return json_response(listed)


@require_role("user")
async def get_definitions(request: web.Request) -> web.StreamResponse:
    """``GET /definitions``: the entity type catalogue, by type name."""
    rows = sorted(CATALOGUE.values(), key=lambda row: row.name)
    return json_response([dump(DefinitionResponse.from_entity_type(row)) for row in rows])
