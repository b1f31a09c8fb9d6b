"""The ``Store`` contract, shared by the embedded SQLite store and the MongoDB store.

Contract (``tests/workers/store`` checks it against each implementation):

- Writes are idempotent: ``write_batch`` skips items that already have an outcome, and writing
  the same association from any number of batches, tasks or processes leaves one record per
  ordered pair (keyed by the association ID) whose ``submissions`` counts the items that
  reached it.
- ``write_batch`` is all or nothing: a batch's effects and its items' outcomes are committed
  together (SQLite: one transaction; MongoDB: one multi-document transaction, on a replica set
  or a sharded cluster), so a batch retried after a failure, or redelivered after a crash, is
  applied exactly once. Only a MongoDB standalone server the operator allowed lacks this.
- Associations are readable from either end.
- Every driver failure surfaces as ``StoreUnavailable`` (transient) or a ``PermanentError``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from workers.store.records import (
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


class Store(Protocol):
    async def start(self) -> None:
        """Open connections and create tables/collections and indexes (idempotent)."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers (for ``/readyz``)."""
        ...

    # hot path ---------------------------------------------------------------------------
    async def existing_entity_ids(self, ids: Collection[str]) -> set[str]:
        """The subset of ``ids`` that are stored entities (one query)."""
        ...

    async def write_batch(self, batch: WriteBatch) -> BatchResult:
        """Apply a message's effects and record each item's outcome (see module docstring)."""
        ...

    async def register_jobs(self, jobs: Sequence[JobHeader]) -> None:
        """Record jobs the front accepted, so ``GET /jobs`` shows them ``queued``
        (insert-if-absent; a worker may have recorded one first)."""
        ...

    # reads ------------------------------------------------------------------------------
    async def get_entity(self, entity_id: str) -> StoredEntity | None: ...

    async def get_entities(self, ids: Collection[str]) -> dict[str, StoredEntity]: ...

    async def list_associations(
        self,
        entity_id: str,
        *,
        direction: Direction = Direction.BOTH,
        association_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[AssociationRecord], str | None]:
        """Edges with ``entity_id`` at the chosen end(s), in a stable order; the second value
        is the opaque cursor of the next page, None on the last page."""
        ...

    async def get_association(self, association_id: str) -> AssociationRecord | None: ...

    async def get_job(self, job_id: str) -> JobStatus | None:
        """Status with counts per outcome and the first 100 item errors by index."""
        ...

    async def list_jobs(
        self, owner: str | None, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[JobStatus], str | None]:
        """The jobs of ``owner`` (every owner's when None) still shown, newest first (job IDs
        are time-ordered), each with its counts but without item errors; the second value is
        the cursor of the next page, None on the last page. A cursor this method did not
        return raises ``PermanentError`` (``invalid_cursor``)."""
        ...

    async def purge_expired_jobs(self, older_than: float) -> int:
        """Remove jobs (and their item outcomes) created before ``older_than``."""
        ...

    # administration ---------------------------------------------------------------------
    async def put_api_key(self, key: ApiKeyRecord) -> None: ...

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_api_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_api_key(self, key_id: str) -> bool: ...

    async def list_custom_types(self) -> list[CustomTypeRecord]: ...

    async def put_custom_type(self, record: CustomTypeRecord) -> bool:
        """Add a custom type; False when one with the same name (any case) exists."""
        ...

    async def delete_custom_type(self, name: str) -> bool:
        """Remove a custom type by name (any case); False when there is none."""
        ...

    # idempotency keys ---------------------------------------------------------------------
    async def reserve_idempotency_key(
        self, reservation: KeyReservation, window: float
    ) -> ReservedKey:
        """Store ``reservation`` unless the same user reserved the same key less than
        ``window`` seconds before ``reservation.created_at`` (``logic.reservation_holds``);
        return the reservation that holds and whether its job is known. Concurrent calls for
        one (user, key), from any number of processes, all get the same reservation. Expired
        reservations are replaced and eventually removed."""
        ...
