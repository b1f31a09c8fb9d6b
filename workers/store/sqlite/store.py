"""The embedded store: one SQLite file, safe for several worker processes on one machine.

- WAL journal, so readers never block the writer and the writer never blocks readers.
- ``synchronous=FULL``: a batch is on disk (the WAL synced) before ``write_batch`` returns, so
  a committed batch survives a crash of any process, of the OS, or a power loss; the worker
  acks a message only after that.
- Every write is one ``BEGIN IMMEDIATE`` transaction: the write lock is taken before the batch
  reads what it is about to change, so concurrent writers (tasks, stores, processes) are
  serialised and an upsert can never be lost. A busy database is waited for (``busy_timeout``,
  polled every millisecond: ``write``) and the transaction retried; if it stays busy,
  or the file cannot be read or written, the call raises ``StoreUnavailable``.
- All blocking sqlite3 calls run off the event loop, on one thread that owns the connection.
- Group commit: batches that arrive while a write is in progress are written together in the
  next transaction, each in its own savepoint (a batch that fails alone is rolled back alone
  and its caller gets the error). Every caller's result is returned only after the commit
  that carries its batch (up to ``write.GROUP_MAX_ITEMS`` items a transaction). Fewer
  commits means fewer WAL page writes, which dominate the cost with random keys; when writes
  do not overlap, each batch is its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

from workers.ground.errors import ConfigurationError, StoreUnavailable
from workers.store.logic import (
    DEFAULT_JOB_TTL,
    JOB_ID_CURSOR,
    PURGE_CHUNK_JOBS,
    checked_cursor,
    jobs_visible_since,
    page_limit,
    sequence_after,
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
from workers.store.sqlite import admin, reads
from workers.store.sqlite import jobs as job_queries
from workers.store.sqlite.idempotency import KeyReserver, Request, reserve_keys
from workers.store.sqlite.schema import configure, create_tables
from workers.store.sqlite.write import (
    BUG_ERRORS,
    apply_group,
    begin_immediate,
    group_size,
    is_busy,
)

__all__ = ["SqliteStore"]

T = TypeVar("T")
P = ParamSpec("P")

_BUSY_RETRIES = 3
_Pending = tuple[WriteBatch, "asyncio.Future[BatchResult]"]


class SqliteStore:
    """``Store`` on an SQLite file at ``path`` (created with its directory when absent).

    ``job_ttl``: jobs older than this many seconds are no longer returned by ``get_job``;
    ``purge_expired_jobs`` removes them. ``busy_timeout``: seconds one statement waits for
    another process's write lock before the transaction is retried. ``after_effects``: the
    test seam of ``records.AfterEffects``.
    """

    def __init__(
        self,
        path: Path,
        *,
        job_ttl: float = DEFAULT_JOB_TTL,
        busy_timeout: float = 10.0,
        after_effects: AfterEffects | None = None,
    ) -> None:
        self.path = Path(path)
        self._after_effects = after_effects
        self.job_ttl = job_ttl
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._keys = KeyReserver(self._reserve_keys)

    # plumbing ---------------------------------------------------------------------------
    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            raise StoreUnavailable("the SQLite store is not started")
        loop = asyncio.get_running_loop()
        call = functools.partial(self._translated, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    @staticmethod
    def _translated(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except BUG_ERRORS:
            raise  # a bug in this module, not an unavailable store
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("the SQLite store is closed")
        return self._conn

    def _read(self, fn: Callable[..., T], *args: object) -> T:
        return fn(self._connection(), *args)

    def _snapshot(self, fn: Callable[..., T], *args: object) -> T:
        """Run several reads of ``fn(conn, *args)`` on one consistent snapshot."""
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")

    def _write(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(conn, *args)`` in one ``BEGIN IMMEDIATE`` transaction, retried while busy."""
        conn = self._connection()
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                begin_immediate(conn, self._busy_timeout_ms)
                try:
                    result = fn(conn, *args)
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt == _BUSY_RETRIES:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _open(self) -> None:
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the store directory: {exc}") from exc
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None
        )
        try:
            configure(conn, self._busy_timeout_ms)
            self._conn = conn
            self._write(create_tables)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _shut(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.execute("PRAGMA optimize")
            finally:
                conn.close()

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-store")
        await self._run(self._open)

    async def close(self) -> None:
        """Finish the writes already submitted, then close the connection and its thread."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
            self._writer = None
        await self._keys.close()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, functools.partial(self._translated, self._shut))
        finally:
            executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(self._read, lambda conn: conn.execute("SELECT 1").fetchone())

    # hot path ---------------------------------------------------------------------------
    async def existing_entity_ids(self, ids: Collection[str]) -> set[str]:
        if not ids:
            return set()
        return await self._run(self._read, reads.existing_entity_ids, list(ids))

    async def write_batch(self, batch: WriteBatch) -> BatchResult:
        """See ``Store.write_batch``; concurrent calls share one transaction (group commit)."""
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain_pending())
        return await future

    async def _drain_pending(self) -> None:
        while self._pending:
            count = group_size([batch for batch, _ in self._pending])
            group = self._pending[:count]
            del self._pending[:count]
            try:
                results = await self._run(
                    self._write, apply_group, [b for b, _ in group], self._after_effects
                )
            except BaseException as exc:  # the whole transaction failed: every caller sees it
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BatchResult):
                    future.set_result(result)
                else:
                    future.set_exception(result)

    async def register_jobs(self, jobs: Sequence[JobHeader]) -> None:
        if jobs:
            await self._run(self._write, job_queries.register_jobs, list(jobs))

    # reads ------------------------------------------------------------------------------
    async def get_entity(self, entity_id: str) -> StoredEntity | None:
        return (await self.get_entities([entity_id])).get(entity_id)

    async def get_entities(self, ids: Collection[str]) -> dict[str, StoredEntity]:
        if not ids:
            return {}
        return await self._run(self._read, reads.get_entities, list(ids))

    async def list_associations(
        self,
        entity_id: str,
        *,
        direction: Direction = Direction.BOTH,
        association_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[AssociationRecord], str | None]:
        """See ``Store.list_associations``; the order is the order records were created in. A
        cursor this method did not return raises ``PermanentError`` (``invalid_cursor``)."""
        after = sequence_after(cursor)
        return await self._run(
            self._read,
            reads.list_associations,
            entity_id,
            Direction(direction),
            association_type,
            page_limit(limit),
            after,
        )

    async def get_association(self, association_id: str) -> AssociationRecord | None:
        return await self._run(self._read, reads.get_association, association_id)

    async def get_job(self, job_id: str) -> JobStatus | None:
        not_before = jobs_visible_since(time.time(), self.job_ttl)
        return await self._run(self._snapshot, job_queries.get_job, job_id, not_before)

    async def list_jobs(
        self, owner: str | None, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[JobStatus], str | None]:
        """See ``Store.list_jobs``."""
        before = checked_cursor(cursor, JOB_ID_CURSOR)
        not_before = jobs_visible_since(time.time(), self.job_ttl)
        return await self._run(
            self._snapshot, job_queries.list_jobs, owner, not_before, page_limit(limit), before
        )

    async def purge_expired_jobs(self, older_than: float) -> int:
        """See ``Store.purge_expired_jobs``: in transactions of at most
        ``logic.PURGE_CHUNK_JOBS`` jobs each, so that batch writes run in between."""
        purged = 0
        while True:
            count = await self._run(
                self._write, job_queries.purge_jobs, older_than, PURGE_CHUNK_JOBS
            )
            purged += count
            if count < PURGE_CHUNK_JOBS:
                return purged

    # administration ---------------------------------------------------------------------
    async def put_api_key(self, key: ApiKeyRecord) -> None:
        await self._run(self._write, admin.put_api_key, key)

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return await self._run(self._read, admin.get_api_key, key_id)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        return await self._run(self._read, admin.list_api_keys)

    async def revoke_api_key(self, key_id: str) -> bool:
        return await self._run(self._write, admin.revoke_api_key, key_id)

    async def list_custom_types(self) -> list[CustomTypeRecord]:
        return await self._run(self._read, admin.list_custom_types)

    async def put_custom_type(self, record: CustomTypeRecord) -> bool:
        return await self._run(self._write, admin.put_custom_type, record)

    async def delete_custom_type(self, name: str) -> bool:
        return await self._run(self._write, admin.delete_custom_type, name)

    # idempotency keys ---------------------------------------------------------------------
    async def reserve_idempotency_key(
        self, reservation: KeyReservation, window: float
    ) -> ReservedKey:
        """See ``Store.reserve_idempotency_key``; concurrent calls share one transaction."""
        return await self._keys.reserve(reservation, window)

    async def _reserve_keys(self, requests: list[Request]) -> list[ReservedKey]:
        return await self._run(self._write, reserve_keys, requests)
