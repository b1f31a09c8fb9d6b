"""What every adapter of the ``Store`` port decides the same way, written once as pure functions.

No driver is imported here (the import-linter contract keeps it so): the adapters in
``workers.store.sqlite`` and ``workers.store.mongo`` read and write, and call these functions to
decide which items of a batch to apply, how many item errors a job reports, whether a cursor is
one they issued and where a page ends, when a job is no longer shown, and how the sources of a
record merge. The embedded-store
tests cover them in every CI run, so the MongoDB adapter does not drift where no run sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from schemas.messages import Provenance
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
    PresetOutcome,
    SourceEntry,
    WriteBatch,
)

__all__ = [
    "ASSOCIATION_ID_CURSOR",
    "DEFAULT_JOB_TTL",
    "INVALID_CURSOR",
    "MAX_ITEM_ERRORS",
    "SEQUENCE_CURSOR",
    "SOURCE",
    "USER",
    "FreshItems",
    "checked_cursor",
    "fresh_items",
    "item_keys",
    "job_expires_at",
    "job_status",
    "jobs_visible_since",
    "merge_source",
    "merge_sources",
    "ordered_sources",
    "page_limit",
    "source_document",
    "source_entries",
    "source_from_document",
    "split_page",
]

T = TypeVar("T")

# jobs ---------------------------------------------------------------------------------------
DEFAULT_JOB_TTL: float = Settings.model_fields["job_ttl"].default
"""Seconds a job and its item outcomes are kept when a store is built without ``job_ttl``: the
default of the ``job_ttl`` setting, so the processes and a store built by hand agree."""

MAX_ITEM_ERRORS = 100
"""Item errors a job status reports at most: the rejected items of lowest index."""


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
) -> JobStatus:
    """The status of the job ``header`` from what its recorded item outcomes add up to.

    ``counted``: one ``(outcome, items with it, latest time one was recorded)`` per outcome;
    ``updated_at`` is the latest of those times (None before any outcome). ``rejected``:
    ``(index, code, message)`` of rejected items in index order; the first ``MAX_ITEM_ERRORS``
    become the status's errors, a missing code or message reading as an empty string.
    """
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
    )


# skipping items already recorded ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FreshItems:
    """The items of a batch that are to be applied and recorded, each kind in batch order."""

    entities: list[EntityWrite]
    edges: list[EdgeWrite]
    deletes: list[EdgeDelete]
    preset: list[PresetOutcome]


def item_keys(items: WriteBatch | FreshItems) -> list[ItemKey]:
    """The key of every item of a batch (or of its fresh items) in the order the adapters
    apply them: entity writes, edges, deletes, then preset outcomes (repeated keys included)."""
    return [
        *(w.key for w in items.entities),
        *(e.key for e in items.edges),
        *(x.key for x in items.deletes),
        *(p.key for p in items.preset),
    ]


def fresh_items(batch: WriteBatch, recorded: Collection[ItemKey]) -> FreshItems:
    """The items of ``batch`` to apply: those whose key has no ``recorded`` outcome (a
    redelivered item keeps the outcome it has) and was not taken by an earlier item of the batch
    in ``item_keys`` order (a key repeated within the batch is applied once, the first time)."""
    seen: set[ItemKey] = set(recorded)

    def fresh(key: ItemKey) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    return FreshItems(
        entities=[w for w in batch.entities if fresh(w.key)],
        edges=[e for e in batch.edges if fresh(e.key)],
        deletes=[x for x in batch.deletes if fresh(x.key)],
        preset=[p for p in batch.preset if fresh(p.key)],
    )


# cursors ------------------------------------------------------------------------------------
INVALID_CURSOR = "invalid_cursor"
"""The ``PermanentError`` code of a cursor the store did not issue."""

SEQUENCE_CURSOR = re.compile(r"^[0-9]{1,19}$")
"""The shape of the embedded store's cursors: the sequence number of a page's last record."""

ASSOCIATION_ID_CURSOR = re.compile(r"^[0-9a-f]{64}$")
"""The shape of the MongoDB store's cursors: the ID of a page's last association."""


def checked_cursor(cursor: str | None, shape: re.Pattern[str]) -> str | None:
    """``cursor`` unchanged when it is None (the first page) or has the ``shape`` of the
    cursors the adapter issues; otherwise ``PermanentError`` with code ``invalid_cursor``."""
    if cursor is not None and not shape.match(cursor):
        raise PermanentError(INVALID_CURSOR, "The cursor is not one this API returned.")
    return cursor


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


# sources ------------------------------------------------------------------------------------
SOURCE = "source"
"""The kind of a source entry named by the input (a feed, an organisation, a STIX identity)."""

USER = "user"
"""The kind of the source entry of the submitting user."""


def source_entries(
    user: str, provenance: Provenance | None, submitted_at: float
) -> tuple[SourceEntry, ...]:
    """What one submission adds to a record's sources: the submitting user's entry, then the
    named source's when the provenance names one, both with the submission's confidence, TLP
    and times. A time not given stands in for the other; with neither, the submission time
    is both (the user reported it then)."""
    if provenance is None:
        return (SourceEntry(user, USER, first_seen=submitted_at, last_seen=submitted_at),)
    first, last = provenance.first_seen, provenance.last_seen
    if first is None and last is None:
        first = last = submitted_at
    elif first is None:
        first = last
    elif last is None:
        last = first
    user_entry = SourceEntry(user, USER, provenance.confidence, provenance.tlp, first, last)
    if provenance.source is None:
        return (user_entry,)
    named = SourceEntry(
        provenance.source, SOURCE, provenance.confidence, provenance.tlp, first, last
    )
    return (user_entry, named)


def _widest(
    a: float | None, b: float | None, pick: Callable[[float, float], float]
) -> float | None:
    if a is None:
        return b
    return a if b is None else pick(a, b)


def merge_source(current: SourceEntry, new: SourceEntry) -> SourceEntry:
    """One source's entry after it reported again (same ``key``): the highest confidence, the
    latest TLP given, the earliest first seen and the latest last seen; what the new report
    leaves out keeps its value. ``current`` itself when nothing changes."""
    name, kind, confidence, tlp, first, last = current
    _, _, new_confidence, new_tlp, new_first, new_last = new
    changed = False
    if new_confidence is not None and (confidence is None or new_confidence > confidence):
        confidence, changed = new_confidence, True
    if new_tlp is not None and new_tlp != tlp:
        tlp, changed = new_tlp, True
    if new_first is not None and (first is None or new_first < first):
        first, changed = new_first, True
    if new_last is not None and (last is None or new_last > last):
        last, changed = new_last, True
    return SourceEntry(name, kind, confidence, tlp, first, last) if changed else current


def merge_sources(
    current: Sequence[SourceEntry], new: Iterable[SourceEntry]
) -> tuple[SourceEntry, ...]:
    """``current`` with each of ``new`` merged into the entry of its source (``merge_source``)
    or added after the others: a report from one source changes no other source's entry."""
    if len(current) == 1 and isinstance(new, tuple) and len(new) == 1:
        # The common case: one user's entry reported again by that user.
        (old,), (entry,) = current, new
        if old[:2] == entry[:2]:
            return (merge_source(old, entry),)
    merged: dict[tuple[str, str], SourceEntry] = {(e.kind, e.name): e for e in current}
    for entry in new:
        key = (entry.kind, entry.name)
        found = merged.get(key)
        merged[key] = entry if found is None else merge_source(found, entry)
    return tuple(merged.values())


def ordered_sources(entries: Iterable[SourceEntry]) -> tuple[SourceEntry, ...]:
    """Entries in the order reads return them: named sources, then users, each by name."""
    return tuple(sorted(entries, key=lambda entry: (entry.kind != SOURCE, entry.name, entry.kind)))


def source_document(entry: SourceEntry) -> dict[str, Any]:
    """An entry as both stores keep it: camelCase keys, unset values left out."""
    name, kind, confidence, tlp, first, last = entry
    document: dict[str, Any] = {"name": name, "kind": kind}
    if confidence is not None:
        document["confidence"] = confidence
    if tlp is not None:
        document["tlp"] = tlp
    if first is not None:
        document["firstSeen"] = first
    if last is not None:
        document["lastSeen"] = last
    return document


def source_from_document(document: Mapping[str, Any]) -> SourceEntry:
    """The entry ``source_document`` stored (a missing value reads as None)."""
    return SourceEntry(
        name=document["name"],
        kind=document["kind"],
        confidence=document.get("confidence"),
        tlp=document.get("tlp"),
        first_seen=document.get("firstSeen"),
        last_seen=document.get("lastSeen"),
    )
