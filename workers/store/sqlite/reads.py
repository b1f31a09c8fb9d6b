"""Reads of entities and associations in the embedded SQLite store (synchronous, one connection).

Every function runs on the store's own thread; ``SqliteStore`` calls them through its executor.
Jobs are in ``jobs``, API keys and custom types in ``admin``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from workers.store.logic import split_page
from workers.store.records import AssociationRecord, Direction, StoredEntity
from workers.store.sources import ordered_sources
from workers.store.sqlite.schema import dumps, key64, load_sources

_ASSOCIATION_COLUMNS = (
    "id, entity_id, related_id, entity_type, related_type, association_types, file_action,"
    " created_at, last_seen, submissions, created_by, sources"
)
_ENTITY_COLUMNS = (
    "id, type, attributes, reputation, tags, visible_by, created_at, last_seen, sources"
)


def _association(row: tuple[Any, ...]) -> AssociationRecord:
    return AssociationRecord(
        id=row[0],
        entity_id=row[1],
        related_id=row[2],
        entity_type=row[3],
        related_type=row[4],
        association_types=tuple(orjson.loads(row[5])),
        file_action=bool(row[6]),
        created_at=row[7],
        last_seen=row[8],
        submissions=row[9],
        created_by=row[10],
        sources=ordered_sources(load_sources(row[11])),
    )


def _entity(row: tuple[Any, ...]) -> StoredEntity:
    return StoredEntity(
        id=row[0],
        type=row[1],
        attributes=orjson.loads(row[2]),
        reputation=row[3],
        tags=tuple(orjson.loads(row[4])),
        visible_by=tuple(orjson.loads(row[5])),
        created_at=row[6],
        last_seen=row[7],
        sources=ordered_sources(load_sources(row[8])),
    )


def existing_entity_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    rows = conn.execute(
        "SELECT id FROM entities WHERE id IN (SELECT value FROM json_each(?))", (dumps(ids),)
    )
    return {row[0] for row in rows}


def get_entities(conn: sqlite3.Connection, ids: list[str]) -> dict[str, StoredEntity]:
    rows = conn.execute(
        f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE id IN (SELECT value FROM json_each(?))",
        (dumps(ids),),
    )
    return {row[0]: _entity(row) for row in rows}


def get_association(conn: sqlite3.Connection, association_id: str) -> AssociationRecord | None:
    row = conn.execute(
        f"SELECT {_ASSOCIATION_COLUMNS} FROM associations WHERE id_key = ? AND id = ?",
        (key64(association_id), association_id),
    ).fetchone()
    return None if row is None else _association(row)


def list_associations(
    conn: sqlite3.Connection,
    entity_id: str,
    direction: Direction,
    association_type: str | None,
    limit: int,
    after: int,
) -> tuple[list[AssociationRecord], str | None]:
    """One page of at most ``limit`` (at least 1) records in insertion (``seq``) order, starting
    after ``after``; the next page's cursor is the ``seq`` of the page's last record (see
    ``logic.split_page``). The ``entity_key`` and ``related_key`` indexes find an end's rows
    already in ``seq`` order, the ID confirms them."""
    type_filter = ""
    type_args: tuple[str, ...] = ()
    if association_type is not None:
        type_filter = " AND EXISTS (SELECT 1 FROM json_each(association_types) WHERE value = ?)"
        type_args = (association_type,)
    out_sql = (
        f"SELECT {_ASSOCIATION_COLUMNS}, seq FROM associations"
        f" WHERE entity_key = ? AND entity_id = ? AND seq > ?{type_filter}"
    )
    in_sql = (
        f"SELECT {_ASSOCIATION_COLUMNS}, seq FROM associations"
        f" WHERE related_key = ? AND related_id = ? AND seq > ? AND entity_id != ?{type_filter}"
    )
    key = key64(entity_id)
    out_args = (key, entity_id, after, *type_args)
    in_args = (key, entity_id, after, entity_id, *type_args)
    if direction is Direction.OUT:
        sql, args = out_sql, out_args
    elif direction is Direction.IN:
        sql, args = in_sql, in_args
    else:
        sql, args = f"{out_sql} UNION ALL {in_sql}", (*out_args, *in_args)
    rows = conn.execute(f"{sql} ORDER BY seq LIMIT ?", (*args, limit + 1)).fetchall()
    page, next_cursor = split_page(rows, limit, lambda row: str(row[-1]))
    return [_association(row) for row in page], next_cursor
