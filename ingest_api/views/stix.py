"""STIX 2.1 in and out (SPEC §3): ``POST /stix`` and ``GET /entity/{id}/stix``.

``POST /stix`` takes a bundle (or a bare JSON array of objects) of at most ``bulk_max_items``
objects and ``max_body_bytes``, converts it (``schemas.stix.convert_bundle``, with the
association rules in force) and queues its entities and associations as one job in one
message: all confirmed, or a 503 and none. The 202 accounts for every object: how many named
entities, how many only links, and each one not represented with its reason. A bundle of which
nothing can be represented is a 400 listing every object's reason; one that makes more items
than one message carries (``publish_max_items``) is a 413 naming the limit. An
``Idempotency-Key`` holds as on the other writes: a retry of the same body answers the first
job, and the bundle's items are processed once.

``GET /entity/{id}/stix`` exports the entity, its associations (both directions, up to
``limit``) and the entities at their other ends as a bundle (``schemas.stix.export``).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from aiohttp import web

from ingest_api.auth import require_role
from ingest_api.errors import ApiError, json_response, store_errors
from ingest_api.idempotency import choose_job, idempotency_key, whole_body_digest
from ingest_api.state import PRINCIPAL, RULES, SETTINGS, STORE
from ingest_api.stix_jobs import encode_job, item_count
from ingest_api.views.writes import queue_job
from schemas import InvalidEntityId, MessageKind, parse_entity_id
from schemas.stix import Conversion, bundle_objects, convert_bundle
from schemas.stix.export import (
    ExportAssociation,
    ExportEntity,
    Source,
    export_bundle,
    timestamp,
)
from schemas.stix.vocabulary import TLP_LEVELS
from workers.ground import metrics
from workers.ground.logs import get_logger, note, note_job
from workers.ground.settings import Settings
from workers.store.records import AssociationRecord, Direction, SourceEntry, StoredEntity
from workers.store.sources import SOURCE

__all__ = ["DEFAULT_EXPORT_LIMIT", "MAX_EXPORT_LIMIT", "get_entity_stix", "post_stix"]

log = get_logger(__name__)

STIX_TYPES = frozenset({"application/json", "application/stix+json", "application/taxii+json"})
"""Content types of a bundle (their ``version`` parameter is not checked)."""

DEFAULT_EXPORT_LIMIT = 1000
MAX_EXPORT_LIMIT = 10_000
"""Associations ``GET /entity/{id}/stix`` exports by default and at most (``?limit=``)."""


# ---- in ---------------------------------------------------------------------------------------


async def _read_body(request: web.Request) -> bytes:
    settings = request.app[SETTINGS]
    if request.content_type not in STIX_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            "The Content-Type must be application/json or application/stix+json.",
        )
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise ApiError(
            413, "body_too_large", f"The body is larger than {settings.max_body_bytes} bytes."
        )
    return await request.read()  # bounded by the application's client_max_size


def _objects(body: bytes, settings: Settings) -> list[Any]:
    try:
        objects = bundle_objects(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}.") from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_body", f"The body is not STIX: {exc}.") from exc
    if not objects:
        raise ApiError(400, "invalid_body", "The bundle holds no objects.")
    if len(objects) > settings.bulk_max_items:
        raise ApiError(
            413,
            "too_many_items",
            f"A bundle may hold at most {settings.bulk_max_items} objects.",
        )
    return objects


def _rejected(conversion: Conversion) -> list[dict[str, Any]]:
    return [
        {
            "index": outcome.index,
            "id": outcome.stix_id,
            "type": outcome.stix_type,
            "error": {"code": outcome.code or "", "message": outcome.message or ""},
        }
        for outcome in conversion.outcomes
        if outcome.outcome == "not_represented"
    ]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bundle's conversion (synchronous: nothing else
    runs meanwhile). The conversion makes tens of thousands of acyclic containers that
    reference counting frees; scanning them while they live made a FireEye bundle cost a
    third more CPU on average (bench/design-measurements.md)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _convert(request: web.Request, body: bytes) -> tuple[dict[str, Any], Conversion, int]:
    """The 202 answer (less ``jobID``), the conversion and its item count of a bundle; 400
    when nothing is represented, 413 beyond the limits."""
    settings = request.app[SETTINGS]
    objects = _objects(body, settings)
    conversion = convert_bundle(objects, request.app[RULES].rules)
    rejected = _rejected(conversion)
    for code, count in conversion.reasons().items():
        metrics.ITEMS_INVALID.labels(code=code).inc(count)
    total = item_count(conversion)
    if total == 0:
        raise ApiError(
            400,
            "no_valid_items",
            f"None of the {len(objects)} objects names an entity or a link; nothing was queued.",
            body_extra={"accepted": 0, "rejected": rejected},
        )
    if total > settings.publish_max_items:
        raise ApiError(
            413,
            "too_many_items",
            f"The bundle makes {total} entities and associations; one job carries at most "
            f"{settings.publish_max_items}. Split the bundle.",
        )
    counts = conversion.counts()
    answer = {
        "message": "acknowledged",
        "accepted": total,
        "entities": len(conversion.entities),
        "associations": len(conversion.links),
        "entityItems": sum(len(entity.provenance) for entity in conversion.entities),
        "objects": {
            "total": counts["total"],
            "entity": counts["entity"],
            "association": counts["association"],
            "notRepresented": counts["not_represented"],
        },
        "rejected": rejected,
        "notes": dict(conversion.notes),
    }
    return answer, conversion, total


@require_role("reporter")
async def post_stix(request: web.Request) -> web.StreamResponse:
    """``POST /stix``: queue a bundle's entities and associations as one job.

    With an ``Idempotency-Key`` (``ingest_api.idempotency``, the digest over the body's bytes)
    the bundle is checked and converted first (a 4xx reserves nothing); a retry answers the
    first request's job and is published again only when the store does not know that job yet;
    the key with another body is a 422."""
    key = idempotency_key(request)
    body = await _read_body(request)
    with _collector_paused():
        answer, conversion, total = _convert(request, body)
    now = time.time()
    job = await choose_job(request, key, await whole_body_digest(request) if key else "", now)
    note_job(job.job_id)
    principal = request[PRINCIPAL]

    def encode() -> list[bytes]:
        with _collector_paused():
            return encode_job(
                conversion,
                job=job.job_id,
                user=principal.user_id,
                groups=principal.groups,
                submitted_at=now,
            )

    headers = await queue_job(request, MessageKind.ENTITY, job, encode, total, now)
    objects = answer["objects"]
    note(objects=objects["total"], not_represented=objects["notRepresented"])
    return json_response({"jobID": job.job_id, **answer}, status=202, headers=headers)


# ---- out --------------------------------------------------------------------------------------


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_EXPORT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_EXPORT_LIMIT:
        raise ApiError(
            400, "invalid_limit", f"limit must be a whole number from 1 to {MAX_EXPORT_LIMIT}."
        )
    return limit


def _sources(entries: Sequence[SourceEntry]) -> tuple[Source, ...]:
    """The named sources of a record as the export states them; with none, one unnamed source
    with the users' highest confidence and strictest TLP (users' names are not exported)."""
    named = tuple(
        Source(
            entry.name,
            entry.confidence,
            entry.tlp,
            None if entry.first_seen is None else timestamp(entry.first_seen),
            None if entry.last_seen is None else timestamp(entry.last_seen),
        )
        for entry in entries
        if entry.kind == SOURCE
    )
    if named:
        return named
    confidences = [entry.confidence for entry in entries if entry.confidence is not None]
    levels = [entry.tlp for entry in entries if entry.tlp in TLP_LEVELS]
    if not confidences and not levels:
        return ()
    strictest = max(levels, key=TLP_LEVELS.index) if levels else None
    return (Source(None, max(confidences) if confidences else None, strictest),)


def _entity(stored: StoredEntity) -> ExportEntity:
    return ExportEntity(
        id=stored.id,
        type=stored.type,
        attributes=stored.attributes,
        created_at=stored.created_at,
        last_seen=stored.last_seen,
        sources=_sources(stored.sources),
    )


def _association(record: AssociationRecord) -> ExportAssociation:
    return ExportAssociation(
        id=record.id,
        entity_id=record.entity_id,
        related_id=record.related_id,
        association_types=record.association_types,
        created_at=record.created_at,
        last_seen=record.last_seen,
        sources=_sources(record.sources),
    )


@require_role("user")
async def get_entity_stix(request: web.Request) -> web.StreamResponse:
    """``GET /entity/{id}/stix``: the entity, its associations and their other ends as a STIX
    2.1 bundle; 400 on a malformed ID or limit, 404 when the entity is absent."""
    eid = request.match_info["id"]
    try:
        parse_entity_id(eid)
    except InvalidEntityId as exc:
        raise ApiError(400, "invalid_entity_id", f"{exc}.") from exc
    limit = _limit(request)
    store = request.app[STORE]
    records: list[AssociationRecord] = []
    cursor: str | None = None
    with store_errors():
        root = await store.get_entity(eid)
        if root is None:
            raise ApiError(404, "entity_not_found", f"There is no entity {eid}.")
        while len(records) < limit:
            page, cursor = await store.list_associations(
                eid,
                direction=Direction.BOTH,
                limit=min(1000, limit - len(records)),
                cursor=cursor,
            )
            records += page
            if cursor is None:
                break
        others = {r.related_id if r.entity_id == eid else r.entity_id for r in records}
        found = await store.get_entities(others) if others else {}
    entities = [_entity(root), *(_entity(found[other]) for other in sorted(found))]
    bundle = export_bundle(entities, [_association(record) for record in records])
    headers = {"X-Truncated": "true"} if cursor is not None else None
    return json_response(bundle, headers=headers)
