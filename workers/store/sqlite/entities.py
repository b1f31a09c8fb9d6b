"""The entities one ``WriteBatch`` touches, merged in memory and written back with one upsert
(inside the caller's write transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from schemas import fold_tags
from workers.store.records import EntityRecord, SourceEntry
from workers.store.sources import merge_sources
from workers.store.sqlite.schema import dump_sources, dumps, load_sources


class EntityRows:
    """The entities a batch touches, merged in memory and written back with one upsert."""

    def __init__(self, conn: sqlite3.Connection, ids: Iterable[str]) -> None:
        self.rows: dict[str, list[Any]] = {}
        wanted = list(set(ids))
        if wanted:
            rows = conn.execute(
                "SELECT id, type, attributes, reputation, tags, visible_by, created_at, sources"
                " FROM entities WHERE id IN (SELECT value FROM json_each(?))",
                (dumps(wanted),),
            )
            for eid, etype, attributes, reputation, tags, visible_by, created_at, sources in rows:
                self.rows[eid] = [
                    etype,
                    orjson.loads(attributes),
                    reputation,
                    orjson.loads(tags),
                    orjson.loads(visible_by),
                    created_at,
                    load_sources(sources),
                ]

    def upsert(
        self, record: EntityRecord, now: float, sources: tuple[SourceEntry, ...] = ()
    ) -> bool:
        """Merge ``record`` and its ``sources`` in; True when the entity is new."""
        row = self.rows.get(record.id)
        if row is None:
            self.rows[record.id] = [
                record.type,
                dict(record.attributes),
                record.reputation,
                list(fold_tags(record.tags)),
                list(dict.fromkeys(record.visible_by)),
                now,
                merge_sources((), sources),
            ]
            return True
        row[1] = {**row[1], **record.attributes}
        if record.reputation is not None:
            row[2] = record.reputation
        row[3] = list(fold_tags([*row[3], *record.tags]))
        row[4] = list(dict.fromkeys([*row[4], *record.visible_by]))
        if sources:
            row[6] = merge_sources(row[6], sources)
        return False

    def flush(self, conn: sqlite3.Connection, touched: set[str], now: float) -> None:
        rows = [
            (eid, r[0], dumps(r[1]), r[2], dumps(r[3]), dumps(r[4]), r[5], now, dump_sources(r[6]))
            for eid, r in self.rows.items()
            if eid in touched
        ]
        if rows:
            conn.executemany(
                "INSERT INTO entities (id, type, attributes, reputation, tags, visible_by,"
                " created_at, last_seen, sources) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes,"
                " reputation = excluded.reputation, tags = excluded.tags,"
                " visible_by = excluded.visible_by, last_seen = excluded.last_seen,"
                " sources = excluded.sources",
                rows,
            )
