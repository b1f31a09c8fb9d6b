"""The sources of a record (SPEC §5), decided once for both store adapters as pure functions.

A submission adds the entries of ``source_entries`` (the submitting user, and the source its
provenance names); a record keeps one entry per source, merged by ``merge_sources`` (the
embedded store applies it, the MongoDB store applies the same rules with ``$max``/``$min``/
``$set``); reads return ``ordered_sources``; both stores keep an entry as ``source_document``.
The embedded-store tests and the store contract suite cover them in every CI run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from schemas.messages import Provenance
from workers.store.records import SourceEntry

__all__ = [
    "SOURCE",
    "USER",
    "merge_source",
    "merge_sources",
    "ordered_sources",
    "source_document",
    "source_entries",
    "source_from_document",
]

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
    if isinstance(new, tuple) and len(new) == 1:
        if not current:  # the common case of a new record: its first report
            return new
        if len(current) == 1:
            # The common case of a known record: one user's entry reported again by that user.
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
