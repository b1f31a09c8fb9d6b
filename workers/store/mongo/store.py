"""The MongoDB store, on PyMongo's async API (``AsyncMongoClient``; Motor is end-of-life).

Collections (SPEC §5): ``entities``, ``associations`` (``_id`` = association ID, indexed on
``entityID`` and ``relatedEntityID`` for reads from either end), ``jobs`` and ``job_items``
(both expire through a TTL index on ``expiresAt``), ``api_keys`` and ``association_types``
(``_id`` = the lowercased name, so names are unique in any case).

Write semantics are those of the SQLite store; how each outcome is decided under concurrency is
described in ``workers.store.mongo.batch``. Connection failures, timeouts and lost primaries
raise ``StoreUnavailable``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import ConnectionFailure, DuplicateKeyError, ExecutionTimeout, WTimeoutError

from workers.ground.errors import StoreUnavailable
from workers.store.logic import (
    ASSOCIATION_ID_CURSOR,
    DEFAULT_JOB_TTL,
    JOB_ID_CURSOR,
    MAX_ITEM_ERRORS,
    checked_cursor,
    job_status,
    jobs_visible_since,
    page_limit,
    split_page,
)
from workers.store.mongo import docs as d
from workers.store.mongo.batch import Db, apply_batch, bulk_ignoring_duplicates, job_header_upserts
from workers.store.records import (
    ApiKeyRecord,
    AssociationRecord,
    BatchResult,
    CustomTypeRecord,
    Direction,
    JobHeader,
    JobStatus,
    Outcome,
    StoredEntity,
    WriteBatch,
)

__all__ = ["MongoStore"]


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
        raise StoreUnavailable(f"MongoDB unavailable: {exc}") from exc


class MongoStore:
    """``Store`` on the MongoDB database ``database`` at ``url``.

    ``job_ttl``: seconds a job and its item outcomes are kept (TTL index; ``get_job`` also hides
    older jobs the TTL monitor has not removed yet).
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        job_ttl: float = DEFAULT_JOB_TTL,
        server_selection_timeout: float = 5.0,
    ) -> None:
        self.job_ttl = job_ttl
        self.database_name = database
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=int(server_selection_timeout * 1000),
            tz_aware=True,
            connect=False,
        )
        self._db: Db = self._client[database]

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        db = self._db
        async with _translated():
            await db.associations.create_indexes(
                [
                    IndexModel([("entityID", ASCENDING), ("_id", ASCENDING)]),
                    IndexModel([("relatedEntityID", ASCENDING), ("_id", ASCENDING)]),
                ]
            )
            await db.jobs.create_indexes(
                [
                    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
                    IndexModel([("createdAt", ASCENDING)]),
                    IndexModel([("owner", ASCENDING), ("_id", DESCENDING)]),
                ]
            )
            await db.job_items.create_indexes(
                [
                    IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0),
                    IndexModel([("job", ASCENDING), ("outcome", ASCENDING), ("idx", ASCENDING)]),
                ]
            )

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        async with _translated():
            await self._db.command("ping")

    async def drop_database(self) -> None:
        """Remove the whole database (tests and tooling only)."""
        async with _translated():
            await self._client.drop_database(self.database_name)

    # hot path ---------------------------------------------------------------------------
    async def existing_entity_ids(self, ids: Collection[str]) -> set[str]:
        if not ids:
            return set()
        async with _translated():
            cursor = self._db.entities.find({"_id": {"$in": list(ids)}}, {"_id": 1})
            return {doc["_id"] async for doc in cursor}

    async def write_batch(self, batch: WriteBatch) -> BatchResult:
        async with _translated():
            return await apply_batch(self._db, batch, self.job_ttl)

    async def register_jobs(self, jobs: Sequence[JobHeader]) -> None:
        async with _translated():
            await bulk_ignoring_duplicates(self._db.jobs, job_header_upserts(jobs, self.job_ttl))

    # reads ------------------------------------------------------------------------------
    async def get_entity(self, entity_id: str) -> StoredEntity | None:
        return (await self.get_entities([entity_id])).get(entity_id)

    async def get_entities(self, ids: Collection[str]) -> dict[str, StoredEntity]:
        if not ids:
            return {}
        async with _translated():
            cursor = self._db.entities.find({"_id": {"$in": list(ids)}})
            return {doc["_id"]: d.to_entity(doc) async for doc in cursor}

    async def list_associations(
        self,
        entity_id: str,
        *,
        direction: Direction = Direction.BOTH,
        association_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[AssociationRecord], str | None]:
        """See ``Store.list_associations``; ordered by association ID. A cursor this method did
        not return raises ``PermanentError`` (``invalid_cursor``)."""
        after = checked_cursor(cursor, ASSOCIATION_ID_CURSOR)
        ends = {
            Direction.OUT: [{"entityID": entity_id}],
            Direction.IN: [{"relatedEntityID": entity_id}],
            Direction.BOTH: [{"entityID": entity_id}, {"relatedEntityID": entity_id}],
        }[Direction(direction)]
        query: dict[str, Any] = {"$or": ends}
        if after is not None:
            query["_id"] = {"$gt": after}
        if association_type is not None:
            query["associationTypes"] = association_type
        limit = page_limit(limit)
        async with _translated():
            found = self._db.associations.find(query).sort("_id", ASCENDING).limit(limit + 1)
            docs = [doc async for doc in found]
        page, next_cursor = split_page(docs, limit, lambda doc: str(doc["_id"]))
        return [d.to_association(doc) for doc in page], next_cursor

    async def get_association(self, association_id: str) -> AssociationRecord | None:
        async with _translated():
            doc = await self._db.associations.find_one({"_id": association_id})
        return None if doc is None else d.to_association(doc)

    async def get_job(self, job_id: str) -> JobStatus | None:
        not_before = jobs_visible_since(time.time(), self.job_ttl)
        async with _translated():
            head = await self._db.jobs.find_one({"_id": job_id, "createdAt": {"$gte": not_before}})
            if head is None:
                return None
            grouped = await self._db.job_items.aggregate(
                [
                    {"$match": {"job": job_id}},
                    {"$group": {"_id": "$outcome", "n": {"$sum": 1}, "at": {"$max": "$at"}}},
                ]
            )
            counted = [(row["_id"], row["n"], row["at"]) async for row in grouped]
            found = (
                self._db.job_items.find({"job": job_id, "outcome": Outcome.REJECTED.value})
                .sort("idx", ASCENDING)
                .limit(MAX_ITEM_ERRORS)
            )
            rejected = [(doc["idx"], doc.get("code"), doc.get("message")) async for doc in found]
        return job_status(d.to_job_header(head), counted, rejected)

    async def list_jobs(
        self, owner: str | None, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[JobStatus], str | None]:
        """See ``Store.list_jobs``; the counts of a page are one aggregation."""
        before = checked_cursor(cursor, JOB_ID_CURSOR)
        query: dict[str, Any] = {
            "createdAt": {"$gte": jobs_visible_since(time.time(), self.job_ttl)}
        }
        if owner is not None:
            query["owner"] = owner
        if before is not None:
            query["_id"] = {"$lt": before}
        limit = page_limit(limit)
        async with _translated():
            found = self._db.jobs.find(query).sort("_id", DESCENDING).limit(limit + 1)
            docs = [doc async for doc in found]
            page, next_cursor = split_page(docs, limit, lambda doc: str(doc["_id"]))
            counted: dict[str, list[tuple[str, int, float]]] = {}
            if page:
                grouped = await self._db.job_items.aggregate(
                    [
                        {"$match": {"job": {"$in": [doc["_id"] for doc in page]}}},
                        {
                            "$group": {
                                "_id": {"job": "$job", "outcome": "$outcome"},
                                "n": {"$sum": 1},
                                "at": {"$max": "$at"},
                            }
                        },
                    ]
                )
                async for row in grouped:
                    key = row["_id"]
                    counted.setdefault(key["job"], []).append((key["outcome"], row["n"], row["at"]))
        jobs = [job_status(d.to_job_header(doc), counted.get(doc["_id"], []), []) for doc in page]
        return jobs, next_cursor

    async def purge_expired_jobs(self, older_than: float) -> int:
        async with _translated():
            expired = [
                doc["_id"]
                async for doc in self._db.jobs.find({"createdAt": {"$lt": older_than}}, {"_id": 1})
            ]
            if expired:
                await self._db.job_items.delete_many({"job": {"$in": expired}})
                await self._db.jobs.delete_many({"_id": {"$in": expired}})
        return len(expired)

    # administration ---------------------------------------------------------------------
    async def put_api_key(self, key: ApiKeyRecord) -> None:
        async with _translated():
            await self._db.api_keys.replace_one(
                {"_id": key.key_id}, d.from_api_key(key), upsert=True
            )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with _translated():
            doc = await self._db.api_keys.find_one({"_id": key_id})
        return None if doc is None else d.to_api_key(doc)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        async with _translated():
            found = self._db.api_keys.find().sort([("createdAt", ASCENDING), ("_id", ASCENDING)])
            return [d.to_api_key(doc) async for doc in found]

    async def revoke_api_key(self, key_id: str) -> bool:
        async with _translated():
            result = await self._db.api_keys.update_one(
                {"_id": key_id}, {"$set": {"revoked": True}}
            )
        return result.matched_count > 0

    async def list_custom_types(self) -> list[CustomTypeRecord]:
        async with _translated():
            found = self._db.association_types.find().sort(
                [("createdAt", ASCENDING), ("name", ASCENDING)]
            )
            return [d.to_custom_type(doc) async for doc in found]

    async def put_custom_type(self, record: CustomTypeRecord) -> bool:
        async with _translated():
            try:
                await self._db.association_types.insert_one(d.from_custom_type(record))
            except DuplicateKeyError:
                return False
        return True

    async def delete_custom_type(self, name: str) -> bool:
        async with _translated():
            result = await self._db.association_types.delete_one({"_id": name.lower()})
        return result.deleted_count > 0
