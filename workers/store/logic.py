"""What every adapter of the ``Store`` port decides the same way, written once as pure functions.

No driver is imported here (the import-linter contract keeps it so): the adapters in
``workers.store.sqlite`` and ``workers.store.mongo`` read and write, and call these functions to
decide which items of a batch to apply, how many item errors a job reports, whether a cursor is
one they issued and where a page ends, and when a job is no longer shown. The embedded-store
tests cover them in every CI run, so the MongoDB adapter does not drift where no run sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from workers.ground.errors import PermanentError
from workers.ground.settings import Settings
from workers.store.records import (
    EdgeDelete,
    EdgeWrite,
    EntityWrite,
    ItemError,
    ItemKey,
    JobHeader,
    JobStatus,
    Outcome,
    PresetOutcome,
    WaitingItem,
    WriteBatch,
)

__all__ = [
    "DEFAULT_JOB_TTL",
    "ERROR_OUTCOMES",
    "INVALID_CURSOR",
    "JOB_ID_CURSOR",
    "MAX_ITEM_ERRORS",
    "MAX_WAITING_FOR",
    "ORDER_CURSOR",
    "PURGE_CHUNK_JOBS",
    "SEQUENCE_CURSOR",
    "FreshItems",
    "checked_cursor",
    "fresh_items",
    "item_keys",
    "job_expires_at",
    "job_status",
    "jobs_visible_since",
    "key_expires_at",
    "order_after",
    "order_cursor",
    "page_limit",
    "reservation_holds",
    "sequence_after",
    "split_page",
    "type_name_key",
    "waiting_summary",
]

T = TypeVar("T")

# jobs ---------------------------------------------------------------------------------------
DEFAULT_JOB_TTL: float = Settings.model_fields["job_ttl"].default
"""Seconds a job and its item outcomes are kept when a store is built without ``job_ttl``: the
default of the ``job_ttl`` setting, so the processes and a store built by hand agree."""

MAX_ITEM_ERRORS = 100
"""Item errors a job status reports at most: the rejected or failed items of lowest index."""

ERROR_OUTCOMES = (Outcome.REJECTED.value, Outcome.FAILED.value)
"""The outcomes a job status lists as item errors, with their code and message."""

MAX_WAITING_FOR = 100
"""Entity IDs a job status names at most as waited for."""

PURGE_CHUNK_JOBS = 500
"""Expired jobs one purge transaction removes at most, so that a purge never holds the write
lock long enough to stall the workers' writes."""


def jobs_visible_since(now: float, job_ttl: float) -> float:
    """The creation time of the oldest job still shown at ``now``: ``get_job`` returns a job
    created at or after it and hides an older one (even before it is purged or expires), and
    ``purge_expired_jobs`` given it removes exactly the hidden jobs."""
    return now - job_ttl


def job_expires_at(created_at: float, job_ttl: float) -> float:
    """When a job created at ``created_at`` (and its item outcomes) expires, in seconds since
    the epoch: the first moment ``jobs_visible_since`` passes its creation time."""
    return created_at + job_ttl


def job_status(
    header: JobHeader,
    counted: Iterable[tuple[str, int, float]],
    rejected: Iterable[tuple[int, str | None, str | None]],
    waiting: Iterable[Iterable[str]] = (),
) -> JobStatus:
    """The status of the job ``header`` from what its recorded item outcomes add up to.

    ``counted``: one ``(outcome, items with it, latest time one was recorded)`` per outcome;
    ``updated_at`` is the latest of those times (None before any outcome). ``rejected``:
    ``(index, code, message)`` of rejected or failed items in index order; the first
    ``MAX_ITEM_ERRORS`` become the status's errors, a missing code or message reading as an
    empty string. ``waiting``: the entity IDs each item still waiting (with no outcome) waits
    for (``waiting_summary``).
    """
    waiting_count, waiting_for = waiting_summary(waiting)
    counts: dict[str, int] = {}
    updated_at: float | None = None
    for outcome, count, at in counted:
        counts[outcome] = count
        updated_at = at if updated_at is None else max(updated_at, at)
    errors = [
        ItemError(index=index, code=code or "", message=message or "")
        for index, code, message in islice(rejected, MAX_ITEM_ERRORS)
    ]
    return JobStatus(
        job_id=header.job_id,
        kind=header.kind,
        owner=header.owner,
        groups=header.groups,
        total=header.total,
        created_at=header.created_at,
        counts=counts,
        errors=errors,
        updated_at=updated_at,
        waiting=waiting_count,
        waiting_for=waiting_for,
    )


def waiting_summary(waiting: Iterable[Iterable[str]]) -> tuple[int, tuple[str, ...]]:
    """How many items wait, and the entity IDs they wait for: the first ``MAX_WAITING_FOR``
    distinct ones, in the order met."""
    count = 0
    ids: dict[str, None] = {}
    for entity_ids in waiting:
        count += 1
        for entity_id in entity_ids:
            if len(ids) < MAX_WAITING_FOR:
                ids.setdefault(entity_id)
    return count, tuple(ids)


# skipping items already recorded ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FreshItems:
    """The items of a batch that are to be applied and recorded, each kind in batch order."""

    entities: list[EntityWrite]
    edges: list[EdgeWrite]
    deletes: list[EdgeDelete]
    preset: list[PresetOutcome]
    waiting: list[WaitingItem]


def item_keys(items: WriteBatch | FreshItems) -> list[ItemKey]:
    """The key of every item of a batch (or of its fresh items) in the order the adapters
    apply them: entity writes (each followed by its part keys), edges, deletes, then preset
    outcomes (repeated keys included). Waiting items have no outcome and are not listed."""
    return [
        *(key for w in items.entities for key in (w.key, *w.part_keys)),
        *(e.key for e in items.edges),
        *(x.key for x in items.deletes),
        *(p.key for p in items.preset),
    ]


def fresh_items(batch: WriteBatch, recorded: Collection[ItemKey]) -> FreshItems:
    """The items of ``batch`` to apply: those whose key has no ``recorded`` outcome (a
    redelivered item keeps the outcome it has) and was not taken by an earlier item of the batch
    in ``item_keys`` order (a key repeated within the batch is applied once, the first time).
    ``recorded`` holds final outcomes only: a ``failed`` key is applied again.

    An entity write is applied when its own key is fresh; its part keys are recorded with it
    (adapters record only the keys that have no outcome yet). A waiting item is kept when its
    key has no outcome and no other item of the batch gives it one."""
    if not recorded:
        keys = item_keys(batch)
        taken = set(keys)
        if len(taken) == len(keys):  # the common case: nothing to leave out but waiting items
            return FreshItems(
                entities=list(batch.entities),
                edges=list(batch.edges),
                deletes=list(batch.deletes),
                preset=list(batch.preset),
                waiting=[w for w in batch.waiting if w.key not in taken],
            )
    seen: set[ItemKey] = set(recorded)

    def fresh(key: ItemKey) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    def fresh_entity(write: EntityWrite) -> bool:
        if not fresh(write.key):
            return False
        seen.update(write.part_keys)
        return True

    items = FreshItems(
        entities=[w for w in batch.entities if fresh_entity(w)],
        edges=[e for e in batch.edges if fresh(e.key)],
        deletes=[x for x in batch.deletes if fresh(x.key)],
        preset=[p for p in batch.preset if fresh(p.key)],
        waiting=[],
    )
    items.waiting.extend(w for w in batch.waiting if w.key not in seen)
    return items


# cursors ------------------------------------------------------------------------------------
INVALID_CURSOR = "invalid_cursor"
"""The ``PermanentError`` code of a cursor the store did not issue."""

MAX_SEQUENCE = 2**63 - 1
"""The largest position a cursor names: both stores keep positions in signed 64-bit integers."""

SEQUENCE_CURSOR = re.compile(r"[0-9]{1,19}")
"""The shape of the embedded store's cursors: the sequence number of a page's last record."""

ORDER_CURSOR = re.compile(r"([0-9]{1,19})-([!-~]{1,256})")
"""The shape of the MongoDB store's cursors: ``<creation order>-<association ID>`` of a page's
last record (any ID of visible ASCII characters, not only the SHA3 hex this pipeline writes)."""

JOB_ID_CURSOR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The shape of both stores' cursors of job listings: the ID of a page's last (oldest) job."""


def _invalid_cursor() -> PermanentError:
    return PermanentError(INVALID_CURSOR, "The cursor is not one this API returned.")


def checked_cursor(cursor: str | None, shape: re.Pattern[str]) -> str | None:
    """``cursor`` unchanged when it is None (the first page) or, as a whole, has the ``shape``
    of the cursors the adapter issues; otherwise ``PermanentError`` with code
    ``invalid_cursor``."""
    if cursor is not None and not shape.fullmatch(cursor):
        raise _invalid_cursor()
    return cursor


def sequence_after(cursor: str | None) -> int:
    """The sequence number an embedded-store cursor names (0 for the first page); a cursor of
    another shape, or naming a number past ``MAX_SEQUENCE``, is ``invalid_cursor``."""
    after = int(checked_cursor(cursor, SEQUENCE_CURSOR) or 0)
    if after > MAX_SEQUENCE:
        raise _invalid_cursor()
    return after


def order_cursor(order: int, association_id: str) -> str:
    """The MongoDB store's cursor of the page ending at the record (``order``, ID)."""
    return f"{order}-{association_id}"


def order_after(cursor: str | None) -> tuple[int, str] | None:
    """The (creation order, association ID) a MongoDB-store cursor names, None for the first
    page; a cursor of another shape, or past ``MAX_SEQUENCE``, is ``invalid_cursor``."""
    if cursor is None:
        return None
    match = ORDER_CURSOR.fullmatch(cursor)
    if match is None or int(match[1]) > MAX_SEQUENCE:
        raise _invalid_cursor()
    return int(match[1]), match[2]


def page_limit(limit: int) -> int:
    """The number of records a page holds: ``limit``, and at least one."""
    return max(1, limit)


def split_page(
    rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]
) -> tuple[Sequence[T], str | None]:
    """Split up to ``limit + 1`` rows read in page order into the page (the first ``limit``)
    and the cursor of the next page: ``cursor_of`` the page's last row when a row is left
    over, None when this page is the last one."""
    if len(rows) > limit:
        return rows[:limit], cursor_of(rows[limit - 1])
    return rows, None


# idempotency keys ---------------------------------------------------------------------------
def reservation_holds(reserved_at: float, now: float, window: float) -> bool:
    """Whether a key reserved at ``reserved_at`` still stands for its job at ``now``: for
    ``window`` seconds (``INGEST_IDEMPOTENCY_WINDOW``), after which the key may be used anew."""
    return reserved_at > now - window


def key_expires_at(reserved_at: float, window: float) -> float:
    """When a key reserved at ``reserved_at`` stops holding: it may be removed from then on."""
    return reserved_at + window


# custom association types -------------------------------------------------------------------
def type_name_key(name: str) -> str:
    """What makes two custom type names the same name: equal after Unicode case folding (as
    ``schemas.rules`` compares them), in every store."""
    return name.strip().casefold()
