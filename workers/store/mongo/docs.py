"""Documents of the MongoDB store and their conversion to and from store records.

Field names follow SPEC §5 (camelCase as ThreatWinds stores them). Times are float seconds
since the epoch, as in the records; ``expiresAt`` is a BSON date only because TTL indexes
need one.

``sources`` is a map from ``source_key`` (a hash of the entry's kind and name: source names are
free text, field names are not) to the entry (``logic.source_document``), so that one update
merges an entry with operators the server applies atomically: ``$max`` of the confidence and
last seen, ``$min`` of the first seen, ``$set`` of the TLP given (``logic.merge_source``).
Reads return the entries in ``logic.ordered_sources`` order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from workers.store.logic import (
    job_expires_at,
    merge_sources,
    ordered_sources,
    source_from_document,
)
from workers.store.records import (
    ApiKeyRecord,
    AssociationRecord,
    CustomTypeRecord,
    EdgeWrite,
    EntityRecord,
    JobHeader,
    SourceEntry,
    StoredEntity,
)

Doc = dict[str, Any]


def source_key(entry: SourceEntry) -> str:
    """The field of ``entry`` in a document's ``sources`` map."""
    digest = hashlib.sha256(f"{entry.kind}\0{entry.name}".encode()).hexdigest()
    return "s" + digest[:32]


def source_operators(entries: Iterable[SourceEntry]) -> dict[str, Doc]:
    """Update operators merging ``entries`` into ``sources`` (``$set``, ``$max``, ``$min``;
    only those needed). Entries of one source are merged first, so no path repeats."""
    operators: dict[str, Doc] = {"$set": {}, "$max": {}, "$min": {}}
    for entry in merge_sources((), entries):
        path = f"sources.{source_key(entry)}"
        operators["$set"][f"{path}.name"] = entry.name
        operators["$set"][f"{path}.kind"] = entry.kind
        if entry.tlp is not None:
            operators["$set"][f"{path}.tlp"] = entry.tlp
        if entry.confidence is not None:
            operators["$max"][f"{path}.confidence"] = entry.confidence
        if entry.first_seen is not None:
            operators["$min"][f"{path}.firstSeen"] = entry.first_seen
        if entry.last_seen is not None:
            operators["$max"][f"{path}.lastSeen"] = entry.last_seen
    return {name: fields for name, fields in operators.items() if fields}


def _with_sources(update: Doc, entries: Sequence[SourceEntry]) -> Doc:
    for operator, fields in source_operators(entries).items():
        update[operator] = {**update.get(operator, {}), **fields}
    return update


def _sources_expression(entries: Sequence[SourceEntry]) -> Doc:
    """Pipeline expression of ``sources`` with ``entries`` merged in (as ``source_operators``)."""
    merged: Doc = {}
    for entry in merge_sources((), entries):
        key = source_key(entry)
        stored = f"$sources.{key}"
        value: Doc = {"name": literal(entry.name), "kind": literal(entry.kind)}
        for field, given, pick in (
            ("confidence", entry.confidence, "$max"),
            ("firstSeen", entry.first_seen, "$min"),
            ("lastSeen", entry.last_seen, "$max"),
            ("tlp", entry.tlp, None),
        ):
            if given is None:
                value[field] = f"{stored}.{field}"
            elif pick is None:
                value[field] = literal(given)
            else:
                value[field] = {pick: [f"{stored}.{field}", literal(given)]}
        merged[key] = value
    return {"$mergeObjects": [{"$ifNull": ["$sources", {}]}, merged]}


def _sources_of(doc: Doc) -> tuple[SourceEntry, ...]:
    entries = (doc.get("sources") or {}).values()
    return ordered_sources(
        source_from_document({k: v for k, v in entry.items() if v is not None}) for entry in entries
    )


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


def entity_update(
    records: list[EntityRecord], now: float, sources: Sequence[SourceEntry] = ()
) -> list[Doc]:
    """Pipeline upserting one entity from the records of a batch, merged in order, with the
    ``sources`` they bring."""
    attributes: Doc = {}
    tags: list[str] = []
    visible_by: list[str] = []
    reputation: int | None = None
    for record in records:
        attributes.update(record.attributes)
        tags.extend(record.tags)
        visible_by.extend(record.visible_by)
        if record.reputation is not None:
            reputation = record.reputation
    update: Doc = {
        "type": literal(records[0].type),
        "attributes": {"$mergeObjects": [{"$ifNull": ["$attributes", {}]}, literal(attributes)]},
        "tags": {"$setUnion": [{"$ifNull": ["$tags", []]}, literal(tags)]},
        "visibleBy": {"$setUnion": [{"$ifNull": ["$visibleBy", []]}, literal(visible_by)]},
        "createdAt": {"$ifNull": ["$createdAt", literal(now)]},
        "lastSeen": literal(now),
    }
    update["reputation"] = (
        literal(reputation) if reputation is not None else {"$ifNull": ["$reputation", None]}
    )
    if sources:
        update["sources"] = _sources_expression(sources)
    return [{"$set": update}]


def edge_new_name_update(edge: EdgeWrite, now: float) -> Doc:
    """Update adding ``edge``'s type name to its pair (creating the record when absent), with
    its sources."""
    return _with_sources(
        {
            "$setOnInsert": {
                "entityID": edge.entity_id,
                "relatedEntityID": edge.related_id,
                "entityType": edge.entity_type,
                "relatedType": edge.related_type,
                "createdAt": now,
                "createdBy": edge.created_by,
            },
            "$push": {"associationTypes": edge.association_type},
            "$set": {"lastSeen": now},
            "$inc": {"submissions": 1},
            "$max": {"fileAction": edge.file_action},
        },
        edge.sources,
    )


def edge_seen_update(count: int, now: float, sources: Sequence[SourceEntry] = ()) -> Doc:
    """Update of a pair submitted ``count`` more times, by ``sources``."""
    return _with_sources({"$set": {"lastSeen": now}, "$inc": {"submissions": count}}, sources)


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
        sources=_sources_of(doc),
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
        sources=_sources_of(doc),
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
        "_id": record.name.lower(),
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
