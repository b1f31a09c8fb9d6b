"""Applying one ``WriteBatch`` to MongoDB: one bulk write per collection, effects first.

Order: job headers, already-recorded item keys (read), entities, associations, deletes, then the
item outcomes. A crash before the outcomes are written leaves the items without outcome, so the
redelivered message applies them again (upserts converge; submissions may count the item twice)
and then records them.

Stored or duplicate is decided by the server, so it stays right with any number of concurrent
writers: the first occurrence of a (pair, type name) in a batch is an upsert filtered on
"the name is not there yet". It matches (or inserts) when the name is new -> ``stored``; when the
name is already there the filter misses, the upsert tries to insert an existing ``_id`` and
fails with a duplicate-key error for that operation only (``ordered=False``) -> ``duplicate``,
whose ``lastSeen``/``submissions`` are then refreshed by a second bulk write.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from workers.ground.errors import StoreUnavailable
from workers.store.logic import fresh_items, item_keys
from workers.store.mongo import docs as d
from workers.store.records import (
    BatchResult,
    EdgeDelete,
    EdgeWrite,
    EntityRecord,
    EntityWrite,
    ItemKey,
    JobHeader,
    Outcome,
    SourceEntry,
    WriteBatch,
)

Db = AsyncDatabase[d.Doc]
DUPLICATE_KEY = 11000
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}


async def bulk_ignoring_duplicates(
    collection: Any, requests: list[Any]
) -> tuple[set[int], set[int]]:
    """Run ``requests`` unordered; (indexes that upserted, indexes refused as duplicate keys)."""
    if not requests:
        return set(), set()
    try:
        result = await collection.bulk_write(requests, ordered=False)
    except BulkWriteError as exc:
        details = exc.details
        if details.get("writeConcernErrors"):
            raise StoreUnavailable(f"MongoDB write concern failed: {details}") from exc
        errors = details.get("writeErrors", [])
        others = [error for error in errors if error.get("code") != DUPLICATE_KEY]
        if others:
            raise
        upserted = {int(u["index"]) for u in details.get("upserted", [])}
        return upserted, {int(error["index"]) for error in errors}
    return set((result.upserted_ids or {}).keys()), set()


def job_header_upserts(jobs: Sequence[JobHeader], job_ttl: float) -> list[UpdateOne]:
    """One insert-if-absent of each job's header (``docs.job_header_update``)."""
    return [
        UpdateOne({"_id": job.job_id}, d.job_header_update(job, job_ttl), upsert=True)
        for job in jobs
    ]


async def _recorded(db: Db, keys: list[ItemKey]) -> dict[ItemKey, Outcome]:
    if not keys:
        return {}
    ids = [d.job_item_id(job, index) for job, index in keys]
    cursor = db.job_items.find({"_id": {"$in": ids}}, {"job": 1, "idx": 1, "outcome": 1})
    return {(doc["job"], doc["idx"]): _OUTCOMES[doc["outcome"]] async for doc in cursor}


async def _entities(db: Db, writes: list[EntityWrite], now: float) -> set[str]:
    """Upsert the entities of ``writes`` (records of one ID merged in order, with their
    sources); the IDs this write created."""
    grouped: dict[str, list[EntityRecord]] = defaultdict(list)
    sources: dict[str, list[SourceEntry]] = defaultdict(list)
    for write in writes:
        for position, record in enumerate(write.entities):
            grouped[record.id].append(record)
            if position < len(write.sources):
                sources[record.id].extend(write.sources[position])
    order = list(grouped)
    requests = [
        UpdateOne({"_id": eid}, d.entity_update(grouped[eid], now, sources[eid]), upsert=True)
        for eid in order
    ]
    upserted, _ = await bulk_ignoring_duplicates(db.entities, requests)
    return {order[index] for index in upserted}


async def _edges(db: Db, edges: list[EdgeWrite], now: float) -> list[Outcome]:
    """Upsert edges; the outcome of each, in order."""
    outcomes: list[Outcome] = [Outcome.DUPLICATE] * len(edges)
    first: dict[tuple[str, str], int] = {}
    repeats: dict[str, int] = defaultdict(int)  # later occurrences in this batch, per pair
    repeated: dict[str, list[int]] = defaultdict(list)  # their positions, for their sources
    for position, edge in enumerate(edges):
        name_key = (edge.association_id, edge.association_type)
        if name_key in first:
            repeats[edge.association_id] += 1
            repeated[edge.association_id].append(position)
        else:
            first[name_key] = position
    positions = list(first.values())
    requests = [
        UpdateOne(
            {
                "_id": edges[p].association_id,
                "associationTypes": {"$ne": edges[p].association_type},
            },
            d.edge_new_name_update(edges[p], now),
            upsert=True,
        )
        for p in positions
    ]
    _, refused = await bulk_ignoring_duplicates(db.associations, requests)
    for index, position in enumerate(positions):
        if index not in refused:
            outcomes[position] = Outcome.STORED
        else:
            repeats[edges[position].association_id] += 1
            repeated[edges[position].association_id].append(position)
    seen = [
        UpdateOne(
            {"_id": aid},
            d.edge_seen_update(
                n, now, [s for p in sorted(repeated[aid]) for s in edges[p].sources]
            ),
        )
        for aid, n in repeats.items()
    ]
    if seen:
        await db.associations.bulk_write(seen, ordered=False)
    return outcomes


async def _delete(db: Db, delete: EdgeDelete) -> Outcome:
    if delete.association_type is None:
        result = await db.associations.delete_one({"_id": delete.association_id})
        return Outcome.DELETED if result.deleted_count else Outcome.NOT_FOUND
    after = await db.associations.find_one_and_update(
        {"_id": delete.association_id, "associationTypes": delete.association_type},
        {"$pull": {"associationTypes": delete.association_type}},
        projection={"associationTypes": 1},
        return_document=ReturnDocument.AFTER,
    )
    if after is None:
        return Outcome.NOT_FOUND
    if not after.get("associationTypes"):
        await db.associations.delete_one({"_id": delete.association_id, "associationTypes": []})
    return Outcome.DELETED


async def apply_batch(db: Db, batch: WriteBatch, job_ttl: float) -> BatchResult:
    """Write ``batch`` (see ``Store.write_batch``). Which items are applied is decided by
    ``logic.fresh_items``: redelivered ones keep their recorded outcome."""
    now = batch.now
    created = {job.job_id: job.created_at for job in batch.jobs}
    if batch.jobs:
        await bulk_ignoring_duplicates(db.jobs, job_header_upserts(batch.jobs, job_ttl))
    recorded = await _recorded(db, item_keys(batch))
    fresh = fresh_items(batch, recorded)

    outcomes: dict[ItemKey, Outcome] = dict(recorded)
    new_ids = await _entities(db, fresh.entities, now)
    for write in fresh.entities:
        main = write.entities[0].id if write.entities else None
        is_new = main in new_ids
        new_ids.discard(main or "")  # a second item of the same entity is a duplicate
        outcomes[write.key] = Outcome.STORED if is_new else Outcome.DUPLICATE
    await _edges(db, [e for w in fresh.entities for e in w.edges], now)
    for edge, outcome in zip(fresh.edges, await _edges(db, fresh.edges, now), strict=True):
        outcomes[edge.key] = outcome
    for delete, outcome in zip(
        fresh.deletes, await asyncio.gather(*(_delete(db, x) for x in fresh.deletes)), strict=True
    ):
        outcomes[delete.key] = outcome

    items: list[InsertOne[d.Doc]] = []
    messages = {p.key: (p.code, p.message) for p in fresh.preset}
    for p in fresh.preset:
        outcomes[p.key] = p.outcome
    for key in item_keys(fresh):
        job, index = key
        code, message = messages.get(key, (None, None))
        items.append(
            InsertOne(
                {
                    "_id": d.job_item_id(job, index),
                    "job": job,
                    "idx": index,
                    "outcome": outcomes[key].value,
                    "code": code,
                    "message": message,
                    "at": now,
                    "expiresAt": d.expires_at(created.get(job, now), job_ttl),
                }
            )
        )
    await bulk_ignoring_duplicates(db.job_items, items)  # a concurrent redelivery wrote them
    return BatchResult(outcomes=outcomes, skipped=frozenset(recorded))
