"""Applying one ``WriteBatch`` inside an open SQLite write transaction.

The caller holds the write lock (``BEGIN IMMEDIATE``), so what is read here cannot change
before it is written: the batch reads the records it touches in one query per table, applies
every item in order in memory (so the same association twice in a batch is ``stored`` then
``duplicate``), then writes each table with one ``executemany``. Association type names are
compared exactly: callers pass the canonical name (``AssociationRules.get``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from workers.store.edges import BatchEdges
from workers.store.logic import fresh_items, item_keys
from workers.store.records import (
    AfterEffects,
    BatchResult,
    ItemKey,
    Outcome,
    WaitingItem,
    WriteBatch,
)
from workers.store.sqlite.entities import EntityRows
from workers.store.sqlite.jobs import register_jobs
from workers.store.sqlite.schema import dump_sources, dumps, key64, load_sources

_OUTCOMES = {outcome.value: outcome for outcome in Outcome}
_SINGLE_NAME_JSON: dict[str, str] = {}


def _names_json(names: list[str]) -> str:
    if len(names) == 1:  # the common case on the hot path: one type name
        name = names[0]
        cached = _SINGLE_NAME_JSON.get(name)
        if cached is None:
            cached = _SINGLE_NAME_JSON.setdefault(name, dumps(names))
        return cached
    return dumps(names)


class _Associations(BatchEdges[int]):
    """The associations a batch touches, read once and written back once (the rules are
    ``BatchEdges``').

    Rows are found through the 64-bit ``id_key`` index and confirmed by the full ID (see
    ``schema``); updates and deletes then address the row by its ``seq`` (``stored``).
    """

    def __init__(self, conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        super().__init__()
        self._keys = {aid: key64(aid) for aid in ids}
        if self._keys:
            rows = conn.execute(
                "SELECT seq, id, association_types, submissions, file_action, sources"
                " FROM associations WHERE id_key IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(self._keys.values())),),
            )
            for seq, aid, names, submissions, file_action, sources in rows:
                if aid in self._keys:
                    self.load(
                        aid,
                        orjson.loads(names),
                        submissions,
                        bool(file_action),
                        load_sources(sources),
                        seq,
                    )

    def flush(self, conn: sqlite3.Connection, now: float) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        removed: list[tuple[int]] = []
        ends: dict[str, int] = {}  # index keys of the association ends, one per entity ID
        for _, state in self.changed():
            seq = state.stored
            if not state.alive:
                if seq is not None:
                    removed.append((seq,))
            elif seq is not None:
                updates.append(
                    (
                        _names_json(state.names),
                        now,
                        state.submissions,
                        state.file_action,
                        dump_sources(state.sources),
                        seq,
                    )
                )
            else:
                edge = state.first
                assert edge is not None
                entity_key = ends.get(edge.entity_id)
                if entity_key is None:
                    entity_key = ends[edge.entity_id] = key64(edge.entity_id)
                related_key = ends.get(edge.related_id)
                if related_key is None:
                    related_key = ends[edge.related_id] = key64(edge.related_id)
                inserts.append(
                    (
                        self._keys[edge.association_id],
                        entity_key,
                        related_key,
                        edge.association_id,
                        edge.entity_id,
                        edge.related_id,
                        edge.entity_type,
                        edge.related_type,
                        _names_json(state.names),
                        state.file_action,
                        now,
                        now,
                        state.submissions,
                        edge.created_by,
                        dump_sources(state.sources),
                    )
                )
        if inserts:
            conn.executemany(
                "INSERT INTO associations (id_key, entity_key, related_key, id, entity_id,"
                " related_id, entity_type, related_type, association_types, file_action,"
                " created_at, last_seen, submissions, created_by, sources)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            conn.executemany(
                "UPDATE associations SET association_types = ?, last_seen = ?, submissions = ?,"
                " file_action = ?, sources = ? WHERE seq = ?",
                updates,
            )
        if removed:
            conn.executemany("DELETE FROM associations WHERE seq = ?", removed)


def recorded_outcomes(conn: sqlite3.Connection, keys: list[ItemKey]) -> dict[ItemKey, Outcome]:
    """Final outcomes already stored for ``keys`` (``failed`` is not final: a later outcome
    replaces it).

    Most items are seen for the first time, so one query first asks which jobs hold any
    outcome between the lowest and the highest index of their keys (one primary-key probe a
    job); the keys of the other jobs cannot have one. A second query, only for the keys of the
    jobs that do, reads their outcomes; CROSS JOIN keeps the planner probing the primary key
    once per key instead of scanning job_items."""
    if not keys:
        return {}
    spans: dict[str, list[int]] = {}
    for job, idx in keys:
        span = spans.get(job)
        if span is None:
            spans[job] = [idx, idx]
        elif idx < span[0]:
            span[0] = idx
        elif idx > span[1]:
            span[1] = idx
    rows = conn.execute(
        "SELECT json_extract(s.value, '$[0]') FROM json_each(?) AS s WHERE EXISTS"
        " (SELECT 1 FROM job_items AS ji WHERE ji.job_id = json_extract(s.value, '$[0]')"
        " AND ji.idx BETWEEN json_extract(s.value, '$[1]') AND json_extract(s.value, '$[2]'))",
        (dumps([[job, *span] for job, span in spans.items()]),),
    )
    busy = {job for (job,) in rows}
    if not busy:
        return {}
    if len(busy) < len(spans):
        keys = [key for key in keys if key[0] in busy]
    rows = conn.execute(
        "SELECT ji.job_id, ji.idx, ji.outcome FROM json_each(?) AS k"
        " CROSS JOIN job_items AS ji ON ji.job_id = json_extract(k.value, '$[0]')"
        " AND ji.idx = json_extract(k.value, '$[1]') WHERE ji.outcome != ?",
        (dumps(keys), Outcome.FAILED.value),
    )
    return {(job_id, idx): _OUTCOMES[outcome] for job_id, idx, outcome in rows}


_RECORD_OUTCOME = (
    "INSERT INTO job_items (job_id, idx, outcome, code, message, at) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (job_id, idx) DO UPDATE SET outcome = excluded.outcome, code = excluded.code,"
    " message = excluded.message, at = excluded.at WHERE job_items.outcome = 'failed'"
)
"""Records an item's outcome: a ``failed`` one is replaced, any other is kept (a part key that
already has its outcome)."""


def _record_waiting(
    conn: sqlite3.Connection, waiting: list[WaitingItem], settled: list[ItemKey]
) -> None:
    if settled:
        conn.executemany("DELETE FROM job_waiting WHERE job_id = ? AND idx = ?", settled)
    if waiting:
        conn.executemany(
            "INSERT INTO job_waiting (job_id, idx, entities, since) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (job_id, idx) DO UPDATE SET entities = excluded.entities",
            [(w.key[0], w.key[1], dumps(w.entity_ids), w.since) for w in waiting],
        )


def apply_batch(
    conn: sqlite3.Connection, batch: WriteBatch, after_effects: AfterEffects | None = None
) -> BatchResult:
    """Write ``batch`` (see ``Store.write_batch``); the caller commits. Which items are applied
    is decided by ``logic.fresh_items``: redelivered ones keep their recorded outcome.
    ``after_effects`` (a test seam) is called between the effects and the outcome rows."""
    now = batch.now
    recorded = recorded_outcomes(conn, item_keys(batch))
    if batch.jobs:
        register_jobs(conn, batch.jobs)
    fresh = fresh_items(batch, recorded)
    entity_writes, edges, deletes = fresh.entities, fresh.edges, fresh.deletes
    entity_edges = [e for w in entity_writes for e in w.edges]
    associations = _Associations(
        conn,
        [e.association_id for e in edges]
        + [e.association_id for e in entity_edges]
        + [d.association_id for d in deletes],
    )
    touched = {record.id for w in entity_writes for record in w.entities}
    entities = EntityRows(conn, touched)

    outcomes: dict[ItemKey, Outcome] = dict(recorded)
    items: list[tuple[str, int, str, str | None, str | None, float]] = []
    for write in entity_writes:
        sources = write.sources + ((),) * (len(write.entities) - len(write.sources))
        new = [
            entities.upsert(record, now, entry)
            for record, entry in zip(write.entities, sources, strict=True)
        ]
        linked = [associations.upsert(edge) for edge in write.edges]
        outcome = Outcome.STORED if new and new[0] else Outcome.DUPLICATE
        outcomes[write.key] = outcome
        items.append((write.key[0], write.key[1], str(outcome), None, None, now))
        if write.part_keys:
            parts = [Outcome.STORED if n else Outcome.DUPLICATE for n in new[1:]] + linked
            for key, part in zip(write.part_keys, parts, strict=True):
                outcomes.setdefault(key, part)
                items.append((key[0], key[1], str(part), None, None, now))
    # ``str`` of an ``Outcome`` is its value, without the enum's Python-level ``value``
    # property: this loop runs once per item.
    upsert = associations.upsert
    for edge in edges:
        key = edge.key
        outcome = outcomes[key] = upsert(edge)
        items.append((key[0], key[1], str(outcome), None, None, now))
    for delete in deletes:
        key = delete.key
        outcome = outcomes[key] = associations.delete(delete)
        items.append((key[0], key[1], str(outcome), None, None, now))
    for preset in fresh.preset:
        key = preset.key
        outcomes[key] = preset.outcome
        items.append((key[0], key[1], str(preset.outcome), preset.code, preset.message, now))

    entities.flush(conn, touched, now)
    associations.flush(conn, now)
    if after_effects is not None:
        after_effects(batch)
    if items:
        conn.executemany(_RECORD_OUTCOME, items)
    settled = [(job, idx) for job, idx, *_ in items] if batch.clears_waiting else []
    _record_waiting(conn, fresh.waiting, settled)
    return BatchResult(outcomes=outcomes, skipped=frozenset(recorded))
