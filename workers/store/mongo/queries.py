"""The reads of the MongoDB store that must use an index, each with the index it uses.

Every query names its index (``hint``): mongod would choose the same one, and SecantusDB, the
MongoDB-compatible server the tests run on, picks an index only when every field of the filter
is in it. ``tests/workers/store/test_mongo.py`` explains these very queries and asserts that
the winning plan scans an index and never the collection.

Reads from either end: one query per end, on the index of that end, in creation order
(``seq``, then ID); ``both`` merges the two pages. One ``$or`` query would do on mongod (it
merges two index scans), but SecantusDB answers ``$or`` with a collection scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from workers.store.logic import ERROR_OUTCOMES
from workers.store.mongo.docs import Doc
from workers.store.records import Direction

ENTITY_END = "entityID_seq__id"
RELATED_END = "relatedEntityID_seq__id"
JOB_ITEMS_BY_OUTCOME = "job_outcome_idx"
JOBS_NEWEST = "_id_desc_createdAt"
JOBS_OF_OWNER = "owner__id_desc_createdAt"
JOB_WAITING_BY_JOB = "job_idx"

ASSOCIATION_INDEXES = [
    IndexModel([("entityID", ASCENDING), ("seq", ASCENDING), ("_id", ASCENDING)], name=ENTITY_END),
    IndexModel(
        [("relatedEntityID", ASCENDING), ("seq", ASCENDING), ("_id", ASCENDING)], name=RELATED_END
    ),
]
JOB_ITEM_INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
    IndexModel(
        [("job", ASCENDING), ("outcome", ASCENDING), ("idx", ASCENDING)],
        name=JOB_ITEMS_BY_OUTCOME,
    ),
]
JOB_WAITING_INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
    IndexModel([("job", ASCENDING), ("idx", ASCENDING)], name=JOB_WAITING_BY_JOB),
]
JOB_INDEXES = [
    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
    IndexModel([("createdAt", ASCENDING)]),
    IndexModel([("_id", DESCENDING), ("createdAt", ASCENDING)], name=JOBS_NEWEST),
    IndexModel(
        [("owner", ASCENDING), ("_id", DESCENDING), ("createdAt", ASCENDING)],
        name=JOBS_OF_OWNER,
    ),
]


@dataclass(frozen=True, slots=True)
class Find:
    """One ``find`` of ``collection``: ``filter`` in ``sort`` order on index ``hint``."""

    collection: str
    filter: Doc
    hint: str
    sort: list[tuple[str, int]] = field(default_factory=list)
    limit: int = 0

    def command(self) -> Doc:
        """The ``find`` command (for ``explain``)."""
        command: Doc = {"find": self.collection, "filter": self.filter, "hint": self.hint}
        if self.sort:
            command["sort"] = dict(self.sort)
        if self.limit:
            command["limit"] = self.limit
        return command

    async def run(self, db: Any) -> list[Doc]:
        cursor = db[self.collection].find(self.filter, hint=self.hint)
        if self.sort:
            cursor = cursor.sort(self.sort)
        if self.limit:
            cursor = cursor.limit(self.limit)
        return [doc async for doc in cursor]


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One ``aggregate`` of ``collection`` whose first stage matches on index ``hint``."""

    collection: str
    pipeline: list[Doc]
    hint: str

    def command(self) -> Doc:
        return {
            "aggregate": self.collection,
            "pipeline": self.pipeline,
            "hint": self.hint,
            "cursor": {},
        }

    async def run(self, db: Any) -> list[Doc]:
        cursor = await db[self.collection].aggregate(self.pipeline, hint=self.hint)
        return [doc async for doc in cursor]


def association_pages(
    entity_id: str,
    direction: Direction,
    association_type: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Find]:
    """The queries of one page of edges at ``entity_id``'s chosen end(s): up to ``limit``
    records each, after the record (``seq``, ID) ``after``. A self-loop is listed once, as an
    edge out (as the embedded store lists it)."""
    rest: Doc = {}
    if after is not None:
        seq, last = after
        rest["$or"] = [{"seq": {"$gt": seq}}, {"seq": seq, "_id": {"$gt": last}}]
    if association_type is not None:
        rest["associationTypes"] = association_type
    order = [("seq", ASCENDING), ("_id", ASCENDING)]
    out = Find("associations", {"entityID": entity_id, **rest}, ENTITY_END, order, limit)
    into = Find(
        "associations",
        {"relatedEntityID": entity_id, "entityID": {"$ne": entity_id}, **rest},
        RELATED_END,
        order,
        limit,
    )
    return {Direction.OUT: [out], Direction.IN: [into], Direction.BOTH: [out, into]}[direction]


def job_header(job_id: str) -> Find:
    return Find("jobs", {"_id": job_id}, "_id_", limit=1)


def job_counts(job_id: str) -> Aggregate:
    """Items of ``job_id`` per outcome, with the latest time one was recorded."""
    return Aggregate(
        "job_items",
        [
            {"$match": {"job": job_id}},
            {"$group": {"_id": "$outcome", "n": {"$sum": 1}, "at": {"$max": "$at"}}},
        ],
        JOB_ITEMS_BY_OUTCOME,
    )


def job_errors(job_id: str, limit: int) -> Find:
    """The rejected or failed items of ``job_id`` of lowest index."""
    return Find(
        "job_items",
        {"job": job_id, "outcome": {"$in": list(ERROR_OUTCOMES)}},
        JOB_ITEMS_BY_OUTCOME,
        [("idx", ASCENDING)],
        limit,
    )


def job_page(owner: str | None, not_before: float, before: str | None, limit: int) -> Find:
    """Up to ``limit`` jobs of ``owner`` (anyone's when None) created at or after
    ``not_before``, newest first (job IDs are time-ordered), older than the job ``before``."""
    query: Doc = {"createdAt": {"$gte": not_before}}
    if before is not None:
        query["_id"] = {"$lt": before}
    newest_first = [("_id", DESCENDING)]
    if owner is None:
        return Find("jobs", query, JOBS_NEWEST, newest_first, limit)
    return Find("jobs", {"owner": owner, **query}, JOBS_OF_OWNER, newest_first, limit)


def job_page_counts(job_ids: list[str]) -> Aggregate:
    """Items of each of ``job_ids`` per outcome, with the latest time one was recorded."""
    return Aggregate(
        "job_items",
        [
            {"$match": {"job": {"$in": job_ids}}},
            {
                "$group": {
                    "_id": {"job": "$job", "outcome": "$outcome"},
                    "n": {"$sum": 1},
                    "at": {"$max": "$at"},
                }
            },
        ],
        JOB_ITEMS_BY_OUTCOME,
    )


def job_waiting(job_ids: list[str]) -> Find:
    """The waiting items of ``job_ids`` (records of items that may since have an outcome)."""
    return Find(
        "job_waiting",
        {"job": {"$in": job_ids}},
        JOB_WAITING_BY_JOB,
        [("job", ASCENDING), ("idx", ASCENDING)],
    )


def job_items_of(item_ids: list[str]) -> Find:
    """The recorded outcomes of the items ``item_ids`` (``docs.job_item_id``)."""
    return Find("job_items", {"_id": {"$in": item_ids}}, "_id_")
