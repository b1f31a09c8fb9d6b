"""Documents of the MongoDB store and their conversion to and from store records.

Field names follow SPEC §5 (camelCase as ThreatWinds stores them). Times are float seconds
since the epoch, as in the records; ``expiresAt`` is a BSON date only because TTL indexes
need one. ``sources`` is a list of entries as ``sources.source_document`` writes them (the
embedded store keeps the same JSON); reads return them in ``sources.ordered_sources`` order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from workers.store.logic import job_expires_at, type_name_key
from workers.store.records import (
    ApiKeyRecord,
    AssociationRecord,
    CustomTypeRecord,
    EdgeWrite,
    JobHeader,
    SourceEntry,
    StoredEntity,
)
from workers.store.sources import ordered_sources, source_document, source_from_document

Doc = dict[str, Any]

_POSITION_BITS = 20
_POSITION_MAX = (1 << _POSITION_BITS) - 1


def expires_at(created_at: float, ttl: float) -> dt.datetime:
    """``logic.job_expires_at`` as the BSON date a TTL index reads."""
    return dt.datetime.fromtimestamp(job_expires_at(created_at, ttl), tz=dt.UTC)


def job_item_id(job_id: str, index: int) -> str:
    return f"{job_id}:{index}"


def job_header_update(job: JobHeader, ttl: float) -> Doc:
    """Update inserting ``job``'s header when the job has none (a stored one never changes)."""
    return {
        "$setOnInsert": {
            "kind": job.kind,
            "owner": job.owner,
            "groups": list(job.groups),
            "total": job.total,
            "createdAt": job.created_at,
            "expiresAt": expires_at(job.created_at, ttl),
        }
    }


def to_job_header(doc: Doc) -> JobHeader:
    return JobHeader(
        job_id=doc["_id"],
        kind=doc["kind"],
        owner=doc["owner"],
        groups=tuple(doc.get("groups") or ()),
        total=doc["total"],
        created_at=doc["createdAt"],
    )


def literal(value: Any) -> Doc:
    """A value inside an update pipeline, never read as a field path or operator."""
    return {"$literal": value}


def creation_order(now: float, position: int) -> int:
    """The ``seq`` of an association created at ``now`` as the ``position``-th new record of its
    batch: milliseconds since the epoch, then the position (pages list records in this order,
    ties by ID, as the embedded store lists them in the order they were inserted)."""
    return (int(now * 1000) << _POSITION_BITS) | min(position, _POSITION_MAX)


def sources_field(entries: Iterable[SourceEntry]) -> list[Doc]:
    """The ``sources`` field of ``entries``."""
    return [source_document(entry) for entry in entries]


def sources_of(doc: Doc) -> tuple[SourceEntry, ...]:
    """The entries of a document's ``sources`` field, as stored (none when it has none)."""
    return tuple(source_from_document(entry) for entry in doc.get("sources") or ())


def new_association(
    edge: EdgeWrite,
    *,
    names: list[str],
    submissions: int,
    file_action: bool,
    now: float,
    seq: int,
    sources: Iterable[SourceEntry] = (),
) -> Doc:
    """The document of the association ``edge`` creates (SPEC §5 field names)."""
    return {
        "_id": edge.association_id,
        "entityID": edge.entity_id,
        "relatedEntityID": edge.related_id,
        "entityType": edge.entity_type,
        "relatedType": edge.related_type,
        "associationTypes": names,
        "fileAction": file_action,
        "createdAt": now,
        "lastSeen": now,
        "submissions": submissions,
        "createdBy": edge.created_by,
        "seq": seq,
        "sources": sources_field(sources),
    }


def to_entity(doc: Doc) -> StoredEntity:
    return StoredEntity(
        id=doc["_id"],
        type=doc["type"],
        attributes=dict(doc.get("attributes") or {}),
        reputation=doc.get("reputation"),
        tags=tuple(doc.get("tags") or ()),
        visible_by=tuple(doc.get("visibleBy") or ()),
        created_at=doc["createdAt"],
        last_seen=doc["lastSeen"],
        sources=ordered_sources(sources_of(doc)),
    )


def to_association(doc: Doc) -> AssociationRecord:
    return AssociationRecord(
        id=doc["_id"],
        entity_id=doc["entityID"],
        related_id=doc["relatedEntityID"],
        entity_type=doc["entityType"],
        related_type=doc["relatedType"],
        association_types=tuple(doc.get("associationTypes") or ()),
        file_action=bool(doc.get("fileAction")),
        created_at=doc["createdAt"],
        last_seen=doc["lastSeen"],
        submissions=doc["submissions"],
        created_by=doc.get("createdBy", ""),
        sources=ordered_sources(sources_of(doc)),
    )


def from_api_key(key: ApiKeyRecord) -> Doc:
    return {
        "_id": key.key_id,
        "secretDigest": key.secret_digest,
        "userID": key.user_id,
        "roles": list(key.roles),
        "groups": list(key.groups),
        "createdAt": key.created_at,
        "expiresAt": key.expires_at,
        "revoked": key.revoked,
    }


def to_api_key(doc: Doc) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=doc["_id"],
        secret_digest=doc["secretDigest"],
        user_id=doc["userID"],
        roles=tuple(doc.get("roles") or ()),
        groups=tuple(doc.get("groups") or ()),
        created_at=doc["createdAt"],
        expires_at=doc.get("expiresAt"),
        revoked=bool(doc.get("revoked")),
    )


def from_custom_type(record: CustomTypeRecord) -> Doc:
    return {
        "_id": type_name_key(record.name),
        "name": record.name,
        "primary": record.primary,
        "nonPrimary": list(record.non_primary),
        "fileAction": record.file_action,
        "createdAt": record.created_at,
    }


def to_custom_type(doc: Doc) -> CustomTypeRecord:
    return CustomTypeRecord(
        name=doc["name"],
        primary=doc["primary"],
        non_primary=tuple(doc.get("nonPrimary") or ()),
        file_action=bool(doc.get("fileAction")),
        created_at=doc["createdAt"],
    )
