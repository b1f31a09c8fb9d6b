"""The MongoDB store, on PyMongo's async API (``AsyncMongoClient``; Motor is end-of-life).

Collections (SPEC §5): ``entities``, ``associations`` (``_id`` = association ID, indexed on
``entityID`` and ``relatedEntityID`` for reads from either end: ``queries``), ``jobs`` and
``job_items`` and ``job_waiting`` (items waiting for an entity; all three expire through a TTL
index on ``expiresAt``), ``api_keys``,
``association_types`` (``_id`` = ``logic.type_name_key`` of the name, so names are unique in
any case) and ``idempotency_keys`` (``workers.store.mongo.idempotency``).

Write semantics are those of the SQLite store. ``write_batch`` is one multi-document
transaction per batch (``batch``), so a batch is all or nothing under retries and crashes; the
deployment must support transactions (a replica set, one member is enough, or a sharded
cluster: ``start`` checks). On a standalone server ``start`` raises ``ConfigurationError``
saying what is not guaranteed, unless the store was built with ``allow_standalone`` (the
``INGEST_MONGODB_ALLOW_STANDALONE`` setting); then it logs that and serialises its own batches.
Driver errors are translated by ``server.translated``.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Collection, Sequence
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from workers.ground.errors import ConfigurationError, StoreUnavailable
from workers.ground.logs import get_logger
from workers.store.logic import (
    DEFAULT_JOB_TTL,
    JOB_ID_CURSOR,
    MAX_ITEM_ERRORS,
    checked_cursor,
    job_status,
    jobs_visible_since,
    order_after,
    order_cursor,
    page_limit,
    split_page,
    type_name_key,
)
from workers.store.mongo import docs as d
from workers.store.mongo import idempotency
from workers.store.mongo import queries as q
from workers.store.mongo.batch import (
    NOT_GUARANTEED,
    Db,
    apply_batch,
    bulk_ignoring_duplicates,
    job_header_upserts,
)
from workers.store.mongo.server import (
    is_authentication_failure,
    is_duplicate_key,
    supports_transactions,
    translated,
)
from workers.store.records import (
    AfterEffects,
    ApiKeyRecord,
    AssociationRecord,
    BatchResult,
    CustomTypeRecord,
    Direction,
    JobHeader,
    JobStatus,
    KeyReservation,
    ReservedKey,
    StoredEntity,
    WriteBatch,
)

__all__ = ["MongoStore"]

log = get_logger(__name__)

CLASH_RETRIES = 20
"""Times a batch's transaction is tried again after a duplicate key: another writer created a
record this batch read as absent (mongod reports most such clashes as write conflicts, which
the driver retries by itself)."""


class MongoStore:
    """``Store`` on the MongoDB database ``database`` at ``url``.

    ``job_ttl``: seconds a job and its item outcomes are kept (TTL index; ``get_job`` also hides
    older jobs the TTL monitor has not removed yet). ``allow_standalone``: run on a server
    without transactions (see the module docstring). ``after_effects``: the test seam of
    ``records.AfterEffects``.
    """

    def __init__(
        self,
        url: str,
        database: str,
        *,
        job_ttl: float = DEFAULT_JOB_TTL,
        server_selection_timeout: float = 5.0,
        allow_standalone: bool = False,
        after_effects: AfterEffects | None = None,
    ) -> None:
        self.job_ttl = job_ttl
        self.database_name = database
        self.allow_standalone = allow_standalone
        self.transactions: bool | None = None
        """Whether batches are written in transactions; None until ``start``."""
        self._after_effects = after_effects
        self._standalone_writes = asyncio.Lock()
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=int(server_selection_timeout * 1000),
            tz_aware=True,
            connect=False,
        )
        self._db: Db = self._client[database]

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the server (see the module docstring), then create the indexes."""
        db = self._db
        try:
            async with translated():
                hello = await self._client.admin.command("hello")
                self._check_topology(hello)
                await db.associations.create_indexes(q.ASSOCIATION_INDEXES)
                await db.jobs.create_indexes(q.JOB_INDEXES)
                await db.job_items.create_indexes(q.JOB_ITEM_INDEXES)
                await db.job_waiting.create_indexes(q.JOB_WAITING_INDEXES)
                await db.idempotency_keys.create_indexes(idempotency.INDEXES)
        except StoreUnavailable as exc:
            if is_authentication_failure(exc.__cause__ or exc):
                raise ConfigurationError(f"MongoDB refused the credentials: {exc}") from exc
            raise

    def _check_topology(self, hello: dict[str, Any]) -> None:
        self.transactions = supports_transactions(hello)
        if self.transactions:
            return
        if not self.allow_standalone:
            raise ConfigurationError(
                "MongoDB is a standalone server: "
                + NOT_GUARANTEED
                + ". Run it as a replica set (one member is enough), or set"
                " INGEST_MONGODB_ALLOW_STANDALONE=true to accept this (one worker process)"
            )
        log.warning("store.standalone_mongodb", not_guaranteed=NOT_GUARANTEED)

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        async with translated():
            await self._db.command("ping")

    async def drop_database(self) -> None:
        """Remove the whole database (tests and tooling only)."""
        async with translated():
            await self._client.drop_database(self.database_name)

    # hot path ---------------------------------------------------------------------------
    async def existing_entity_ids(self, ids: Collection[str]) -> set[str]:
        if not ids:
            return set()
        async with translated():
            cursor = self._db.entities.find({"_id": {"$in": list(ids)}}, {"_id": 1})
            return {doc["_id"] async for doc in cursor}

    async def write_batch(self, batch: WriteBatch) -> BatchResult:
        """See ``Store.write_batch``: one transaction per batch (``batch``)."""
        async with translated():
            if not self.transactions:
                async with self._standalone_writes:
                    return await apply_batch(
                        self._db, batch, self.job_ttl, None, self._after_effects
                    )
            for _ in range(CLASH_RETRIES):
                try:
                    return await self._transaction(batch)
                except PyMongoError as exc:
                    if not is_duplicate_key(exc):
                        raise
        raise StoreUnavailable("MongoDB: the batch kept clashing with concurrent writers")

    async def _transaction(self, batch: WriteBatch) -> BatchResult:
        async def attempt(session: AsyncClientSession) -> BatchResult:
            return await apply_batch(self._db, batch, self.job_ttl, session, self._after_effects)

        async with self._client.start_session() as session:
            return await session.with_transaction(
                attempt,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )

    async def register_jobs(self, jobs: Sequence[JobHeader]) -> None:
        async with translated():
            await bulk_ignoring_duplicates(self._db.jobs, job_header_upserts(jobs, self.job_ttl))

    # reads ------------------------------------------------------------------------------
    async def get_entity(self, entity_id: str) -> StoredEntity | None:
        return (await self.get_entities([entity_id])).get(entity_id)

    async def get_entities(self, ids: Collection[str]) -> dict[str, StoredEntity]:
        if not ids:
            return {}
        async with translated():
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
        """See ``Store.list_associations``; in creation order (``docs.creation_order``, then
        ID). A cursor this method did not return raises ``PermanentError`` (``invalid_cursor``)."""
        after = order_after(cursor)
        limit = page_limit(limit)
        finds = q.association_pages(
            entity_id, Direction(direction), association_type, after, limit + 1
        )
        async with translated():
            pages = [await find.run(self._db) for find in finds]
        docs = list(heapq.merge(*pages, key=_order))[: limit + 1] if len(pages) > 1 else pages[0]
        page, next_cursor = split_page(docs, limit, lambda doc: order_cursor(*_order(doc)))
        return [d.to_association(doc) for doc in page], next_cursor

    async def get_association(self, association_id: str) -> AssociationRecord | None:
        async with translated():
            doc = await self._db.associations.find_one({"_id": association_id})
        return None if doc is None else d.to_association(doc)

    async def get_job(self, job_id: str) -> JobStatus | None:
        not_before = jobs_visible_since(time.time(), self.job_ttl)
        async with translated():
            heads = await q.job_header(job_id).run(self._db)
            if not heads or heads[0]["createdAt"] < not_before:
                return None
            grouped = await q.job_counts(job_id).run(self._db)
            counted = [(row["_id"], row["n"], row["at"]) for row in grouped]
            found = await q.job_errors(job_id, MAX_ITEM_ERRORS).run(self._db)
            rejected = [(doc["idx"], doc.get("code"), doc.get("message")) for doc in found]
            waiting = await self._waiting([job_id])
        return job_status(d.to_job_header(heads[0]), counted, rejected, waiting.get(job_id, []))

    async def _waiting(self, job_ids: list[str]) -> dict[str, list[list[str]]]:
        """The entity IDs each item of ``job_ids`` still waiting waits for, by job: an item
        that has its outcome no longer waits, whether or not its record was cleared."""
        docs = await q.job_waiting(job_ids).run(self._db)
        if not docs:
            return {}
        done = {
            doc["_id"] for doc in await q.job_items_of([doc["_id"] for doc in docs]).run(self._db)
        }
        waiting: dict[str, list[list[str]]] = {}
        for doc in docs:
            if doc["_id"] not in done:
                waiting.setdefault(doc["job"], []).append(list(doc.get("entities") or ()))
        return waiting

    async def list_jobs(
        self, owner: str | None, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[JobStatus], str | None]:
        """See ``Store.list_jobs``; the counts of a page are one aggregation."""
        before = checked_cursor(cursor, JOB_ID_CURSOR)
        not_before = jobs_visible_since(time.time(), self.job_ttl)
        limit = page_limit(limit)
        async with translated():
            docs = await q.job_page(owner, not_before, before, limit + 1).run(self._db)
            page, next_cursor = split_page(docs, limit, lambda doc: str(doc["_id"]))
            counted: dict[str, list[tuple[str, int, float]]] = {}
            if page:
                grouped = await q.job_page_counts([doc["_id"] for doc in page]).run(self._db)
                for row in grouped:
                    key = row["_id"]
                    counted.setdefault(key["job"], []).append((key["outcome"], row["n"], row["at"]))
            waiting = await self._waiting([doc["_id"] for doc in page]) if page else {}
        jobs = [
            job_status(
                d.to_job_header(doc), counted.get(doc["_id"], []), [], waiting.get(doc["_id"], [])
            )
            for doc in page
        ]
        return jobs, next_cursor

    async def purge_expired_jobs(self, older_than: float) -> int:
        async with translated():
            expired = [
                doc["_id"]
                async for doc in self._db.jobs.find({"createdAt": {"$lt": older_than}}, {"_id": 1})
            ]
            if expired:
                await self._db.job_items.delete_many({"job": {"$in": expired}})
                await self._db.job_waiting.delete_many({"job": {"$in": expired}})
                await self._db.jobs.delete_many({"_id": {"$in": expired}})
        return len(expired)

    # administration ---------------------------------------------------------------------
    async def put_api_key(self, key: ApiKeyRecord) -> None:
        async with translated():
            await self._db.api_keys.replace_one(
                {"_id": key.key_id}, d.from_api_key(key), upsert=True
            )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        async with translated():
            doc = await self._db.api_keys.find_one({"_id": key_id})
        return None if doc is None else d.to_api_key(doc)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        async with translated():
            found = self._db.api_keys.find().sort([("createdAt", ASCENDING), ("_id", ASCENDING)])
            return [d.to_api_key(doc) async for doc in found]

    async def revoke_api_key(self, key_id: str) -> bool:
        async with translated():
            result = await self._db.api_keys.update_one(
                {"_id": key_id}, {"$set": {"revoked": True}}
            )
        return result.matched_count > 0

    async def list_custom_types(self) -> list[CustomTypeRecord]:
        async with translated():
            found = self._db.association_types.find().sort(
                [("createdAt", ASCENDING), ("name", ASCENDING)]
            )
            return [d.to_custom_type(doc) async for doc in found]

    async def put_custom_type(self, record: CustomTypeRecord) -> bool:
        async with translated():
            try:
                await self._db.association_types.insert_one(d.from_custom_type(record))
            except DuplicateKeyError:
                return False
        return True

    async def delete_custom_type(self, name: str) -> bool:
        async with translated():
            result = await self._db.association_types.delete_one({"_id": type_name_key(name)})
        return result.deleted_count > 0

    # idempotency keys ---------------------------------------------------------------------
    async def reserve_idempotency_key(
        self, reservation: KeyReservation, window: float
    ) -> ReservedKey:
        async with translated():
            return await idempotency.reserve_key(self._db, reservation, window)


def _order(doc: d.Doc) -> tuple[int, str]:
    """Where ``doc`` stands in a page: (creation order, ID)."""
    return int(doc.get("seq") or 0), str(doc["_id"])
