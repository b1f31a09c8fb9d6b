"""Applying one ``WriteBatch`` to MongoDB, inside the caller's transaction.

Order: job headers, the item keys already recorded (read), the entities and associations the
fresh items touch (read), the items applied in memory in batch order (``plan``), then one bulk
write each of entities, associations and item outcomes, then the waiting items (those of the
batch's items that now have an outcome removed, the still-waiting ones upserted).
``MongoStore.write_batch`` runs all of it in one multi-document transaction, so a batch's
effects and its outcomes are committed together or not at all: a failure anywhere in between
(or a crash) leaves nothing, and the retried or redelivered batch is applied exactly once.
Two batches that touch the same record at once conflict; the transaction that loses is tried
again from the start, on a snapshot that shows the winner's changes, so outcomes stay right
with any number of writers.

Without a transaction (a standalone server, allowed by ``INGEST_MONGODB_ALLOW_STANDALONE``)
the same writes run one after another, with none of these guarantees (``NOT_GUARANTEED``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pymongo import DeleteMany, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from workers.ground.errors import StoreUnavailable
from workers.store.logic import fresh_items, item_keys
from workers.store.mongo import docs as d
from workers.store.mongo.plan import AssociationChanges, EntityChanges
from workers.store.records import (
    AfterEffects,
    BatchResult,
    ItemKey,
    JobHeader,
    Outcome,
    WaitingItem,
    WriteBatch,
)

Db = AsyncDatabase[d.Doc]
Session = AsyncClientSession | None
DUPLICATE_KEY = 11000
_OUTCOMES = {outcome.value: outcome for outcome in Outcome}

NOT_GUARANTEED = (
    "without multi-document transactions a batch's effects and its items' outcomes are not "
    "written atomically (an item retried after a failure between them is applied twice: its "
    "submission counted again, a delete that succeeded reported not_found), and worker "
    "processes writing the same association at once can overwrite each other's changes"
)
"""What a standalone MongoDB server does not guarantee, as the process says it at start."""


async def bulk_ignoring_duplicates(
    collection: Any, requests: list[Any]
) -> tuple[set[int], set[int]]:
    """Run ``requests`` unordered, outside any transaction; (indexes that upserted, indexes
    refused as duplicate keys)."""
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


async def _bulk(collection: Any, requests: list[Any], session: Session) -> None:
    if requests:
        await collection.bulk_write(requests, ordered=True, session=session)


async def _find(collection: Any, ids: Collection[str], session: Session) -> list[d.Doc]:
    if not ids:
        return []
    return [doc async for doc in collection.find({"_id": {"$in": list(ids)}}, session=session)]


async def _recorded(
    db: Db, keys: list[ItemKey], session: Session
) -> tuple[dict[ItemKey, Outcome], set[ItemKey]]:
    """The final outcomes recorded for ``keys``, and the keys recorded ``failed`` (not final:
    a later outcome replaces it)."""
    if not keys:
        return {}, set()
    ids = [d.job_item_id(job, index) for job, index in keys]
    cursor = db.job_items.find(
        {"_id": {"$in": ids}}, {"job": 1, "idx": 1, "outcome": 1}, session=session
    )
    final: dict[ItemKey, Outcome] = {}
    failed: set[ItemKey] = set()
    async for doc in cursor:
        key = (doc["job"], doc["idx"])
        outcome = _OUTCOMES[doc["outcome"]]
        if outcome is Outcome.FAILED:
            failed.add(key)
        else:
            final[key] = outcome
    return final, failed


def _waiting_writes(
    waiting: list[WaitingItem], job_ttl: float, created: dict[str, float]
) -> list[UpdateOne]:
    """Upserts of waiting items: the first ``since`` and expiry kept, the entity IDs updated."""
    return [
        UpdateOne(
            {"_id": d.job_item_id(*w.key)},
            {
                "$setOnInsert": {
                    "job": w.key[0],
                    "idx": w.key[1],
                    "since": w.since,
                    "expiresAt": d.expires_at(created.get(w.key[0], w.since), job_ttl),
                },
                "$set": {"entities": list(w.entity_ids)},
            },
            upsert=True,
        )
        for w in waiting
    ]


async def _created_at(
    db: Db, batch: WriteBatch, keys: list[ItemKey], session: Session
) -> dict[str, float]:
    """When each job of ``keys`` was created: from the batch's headers, else from the stored
    header (so that outcomes expire with their job), else the batch's time."""
    created = {job.job_id: job.created_at for job in batch.jobs}
    missing = {job for job, _ in keys} - created.keys()
    if missing:
        async for doc in db.jobs.find(
            {"_id": {"$in": list(missing)}}, {"createdAt": 1}, session=session
        ):
            created[doc["_id"]] = doc["createdAt"]
    return created


async def apply_batch(
    db: Db,
    batch: WriteBatch,
    job_ttl: float,
    session: Session,
    after_effects: AfterEffects | None = None,
) -> BatchResult:
    """Write ``batch`` (see ``Store.write_batch``) in ``session``'s transaction. Which items
    are applied is decided by ``logic.fresh_items``: redelivered ones keep their recorded
    outcome. ``after_effects`` (a test seam) is called between the effects and the outcomes."""
    now = batch.now
    if batch.jobs:
        await _bulk(db.jobs, job_header_upserts(batch.jobs, job_ttl), session)
    recorded, failed = await _recorded(db, item_keys(batch), session)
    fresh = fresh_items(batch, recorded)

    entity_edges = [e for w in fresh.entities for e in w.edges]
    entity_ids = {record.id for w in fresh.entities for record in w.entities}
    association_ids = {e.association_id for e in [*fresh.edges, *entity_edges]}
    association_ids.update(x.association_id for x in fresh.deletes)
    entities = EntityChanges(await _find(db.entities, entity_ids, session))
    associations = AssociationChanges(await _find(db.associations, association_ids, session))

    outcomes: dict[ItemKey, Outcome] = dict(recorded)
    for write in fresh.entities:
        sources = write.sources + ((),) * (len(write.entities) - len(write.sources))
        new = [
            entities.upsert(record, entry)
            for record, entry in zip(write.entities, sources, strict=True)
        ]
        linked = [associations.upsert(edge) for edge in write.edges]
        outcomes[write.key] = Outcome.STORED if new and new[0] else Outcome.DUPLICATE
        if write.part_keys:
            parts = [Outcome.STORED if n else Outcome.DUPLICATE for n in new[1:]] + linked
            for key, part in zip(write.part_keys, parts, strict=True):
                outcomes.setdefault(key, part)  # a part key recorded before keeps its outcome
    for edge in fresh.edges:
        outcomes[edge.key] = associations.upsert(edge)
    for delete in fresh.deletes:
        outcomes[delete.key] = associations.delete(delete)
    for preset in fresh.preset:
        outcomes[preset.key] = preset.outcome

    await _bulk(db.entities, entities.writes(now), session)
    await _bulk(db.associations, associations.writes(now), session)
    if after_effects is not None:
        after_effects(batch)

    # A part key may already have its outcome (recorded before): only new keys are written.
    keys = [key for key in dict.fromkeys(item_keys(fresh)) if key not in recorded]
    created = await _created_at(db, batch, [*keys, *(w.key for w in fresh.waiting)], session)
    messages = {p.key: (p.code, p.message) for p in fresh.preset}
    items: list[InsertOne[d.Doc] | ReplaceOne[d.Doc]] = []
    for key in keys:
        job, index = key
        code, message = messages.get(key, (None, None))
        doc: d.Doc = {
            "_id": d.job_item_id(job, index),
            "job": job,
            "idx": index,
            "outcome": outcomes[key].value,
            "code": code,
            "message": message,
            "at": now,
            "expiresAt": d.expires_at(created.get(job, now), job_ttl),
        }
        if key in failed:  # replaces the failed outcome
            items.append(ReplaceOne({"_id": doc["_id"]}, doc))
        else:
            items.append(InsertOne(doc))
    await _bulk(db.job_items, items, session)
    waiting: list[DeleteMany | UpdateOne] = []
    if batch.clears_waiting and keys:
        settled = [d.job_item_id(*key) for key in keys]
        waiting.append(DeleteMany({"_id": {"$in": settled}}))
    waiting.extend(_waiting_writes(fresh.waiting, job_ttl, created))
    await _bulk(db.job_waiting, waiting, session)
    return BatchResult(outcomes=outcomes, skipped=frozenset(recorded))
