"""Reads and administration queries of the embedded SQLite store (synchronous, one connection).

Every function runs on the store's own thread; ``SqliteStore`` calls them through its executor.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import orjson

from workers.ground.errors import PermanentError
from workers.store.records import (
    ApiKeyRecord,
    AssociationRecord,
    CustomTypeRecord,
    Direction,
    ItemError,
    JobHeader,
    JobStatus,
    Outcome,
    StoredEntity,
)
from workers.store.sqlite.schema import dumps, key64

MAX_ERRORS = 100
_CURSOR_RE = re.compile(r"^[0-9]{1,19}$")
_ASSOCIATION_COLUMNS = (
    "id, entity_id, related_id, entity_type, related_type, association_types, file_action,"
    " created_at, last_seen, submissions, created_by"
)
_ENTITY_COLUMNS = "id, type, attributes, reputation, tags, visible_by, created_at, last_seen"


def check_cursor(cursor: str | None) -> int:
    """The ``seq`` a page starts after; ``PermanentError("invalid_cursor")`` when the cursor
    was not produced by ``list_associations``."""
    if cursor is None:
        return 0
    if not _CURSOR_RE.match(cursor):
        raise PermanentError("invalid_cursor", "The cursor is not one this API returned.")
    return int(cursor)


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
    """One page in insertion (``seq``) order, starting after ``after``: the ``entity_key`` and
    ``related_key`` indexes find an end's rows already in ``seq`` order, the ID confirms them."""
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
    page = [_association(row) for row in rows[:limit]]
    next_cursor = str(rows[limit - 1][-1]) if len(rows) > limit else None
    return page, next_cursor


def get_job(conn: sqlite3.Connection, job_id: str, not_before: float) -> JobStatus | None:
    head = conn.execute(
        "SELECT kind, owner, groups, total, created_at FROM jobs"
        " WHERE job_id = ? AND created_at >= ?",
        (job_id, not_before),
    ).fetchone()
    if head is None:
        return None
    counts: dict[str, int] = {}
    updated_at: float | None = None
    for outcome, count, at in conn.execute(
        "SELECT outcome, count(*), max(at) FROM job_items WHERE job_id = ? GROUP BY outcome",
        (job_id,),
    ):
        counts[outcome] = count
        updated_at = at if updated_at is None else max(updated_at, at)
    errors = [
        ItemError(index=idx, code=code or "", message=message or "")
        for idx, code, message in conn.execute(
            "SELECT idx, code, message FROM job_items WHERE job_id = ? AND outcome = ?"
            " ORDER BY idx LIMIT ?",
            (job_id, Outcome.REJECTED.value, MAX_ERRORS),
        )
    ]
    kind, owner, groups, total, created_at = head
    return JobStatus(
        job_id=job_id,
        kind=kind,
        owner=owner,
        groups=tuple(orjson.loads(groups)),
        total=total,
        created_at=created_at,
        counts=counts,
        errors=errors,
        updated_at=updated_at,
    )


def register_jobs(conn: sqlite3.Connection, jobs: list[JobHeader]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO jobs (job_id, kind, owner, groups, total, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(j.job_id, j.kind, j.owner, dumps(j.groups), j.total, j.created_at) for j in jobs],
    )


def purge_jobs(conn: sqlite3.Connection, older_than: float) -> int:
    expired = [
        row[0]
        for row in conn.execute("SELECT job_id FROM jobs WHERE created_at < ?", (older_than,))
    ]
    if expired:
        conn.executemany("DELETE FROM job_items WHERE job_id = ?", [(j,) for j in expired])
        conn.executemany("DELETE FROM jobs WHERE job_id = ?", [(j,) for j in expired])
    return len(expired)


# api keys ---------------------------------------------------------------------------------
_KEY_COLUMNS = "key_id, secret_digest, user_id, roles, groups, created_at, expires_at, revoked"


def _api_key(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row[0],
        secret_digest=row[1],
        user_id=row[2],
        roles=tuple(orjson.loads(row[3])),
        groups=tuple(orjson.loads(row[4])),
        created_at=row[5],
        expires_at=row[6],
        revoked=bool(row[7]),
    )


def put_api_key(conn: sqlite3.Connection, key: ApiKeyRecord) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.key_id,
            key.secret_digest,
            key.user_id,
            dumps(key.roles),
            dumps(key.groups),
            key.created_at,
            key.expires_at,
            key.revoked,
        ),
    )


def get_api_key(conn: sqlite3.Connection, key_id: str) -> ApiKeyRecord | None:
    row = conn.execute(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
    ).fetchone()
    return None if row is None else _api_key(row)


def list_api_keys(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
    rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
    return [_api_key(row) for row in rows]


def revoke_api_key(conn: sqlite3.Connection, key_id: str) -> bool:
    return conn.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount > 0


# custom association types ---------------------------------------------------------------
def list_custom_types(conn: sqlite3.Connection) -> list[CustomTypeRecord]:
    rows = conn.execute(
        "SELECT name, primary_kind, non_primary, file_action, created_at FROM custom_types"
        " ORDER BY created_at, name"
    )
    return [
        CustomTypeRecord(
            name=name,
            primary=primary,
            non_primary=tuple(orjson.loads(non_primary)),
            file_action=bool(file_action),
            created_at=created_at,
        )
        for name, primary, non_primary, file_action, created_at in rows
    ]


def put_custom_type(conn: sqlite3.Connection, record: CustomTypeRecord) -> bool:
    cursor = conn.execute(
        "INSERT OR IGNORE INTO custom_types (name, primary_kind, non_primary, file_action,"
        " created_at) VALUES (?, ?, ?, ?, ?)",
        (
            record.name,
            record.primary,
            dumps(record.non_primary),
            record.file_action,
            record.created_at,
        ),
    )
    return cursor.rowcount > 0


def delete_custom_type(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("DELETE FROM custom_types WHERE name = ?", (name,)).rowcount > 0
