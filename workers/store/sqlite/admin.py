"""Administration records of the embedded SQLite store: API keys and custom association types.

Synchronous functions on the store's one connection, run on its own thread; the writes run
inside the caller's write transaction (``SqliteStore._write``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from workers.store.logic import type_name_key
from workers.store.records import ApiKeyRecord, CustomTypeRecord
from workers.store.sqlite.schema import dumps

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
    """Store ``key``, replacing a key with the same ID."""
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
    """Every key, oldest first (ties by key ID)."""
    rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
    return [_api_key(row) for row in rows]


def revoke_api_key(conn: sqlite3.Connection, key_id: str) -> bool:
    """Mark ``key_id`` revoked; False when there is no such key."""
    return conn.execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount > 0


# custom association types ---------------------------------------------------------------
def list_custom_types(conn: sqlite3.Connection) -> list[CustomTypeRecord]:
    """Every custom type, oldest first (ties by name, ignoring ASCII case)."""
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


def _stored_name(conn: sqlite3.Connection, name: str) -> str | None:
    """The stored name that is the same name as ``name`` (``logic.type_name_key``: Unicode
    case folding, where the column's ``NOCASE`` folds ASCII letters only)."""
    key = type_name_key(name)
    for (stored,) in conn.execute("SELECT name FROM custom_types"):
        if type_name_key(stored) == key:
            return str(stored)
    return None


def put_custom_type(conn: sqlite3.Connection, record: CustomTypeRecord) -> bool:
    """Add ``record``; False when a type of that name exists (``logic.type_name_key``)."""
    if _stored_name(conn, record.name) is not None:
        return False
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
    """Remove the type called ``name`` (``logic.type_name_key``); False when there is none."""
    stored = _stored_name(conn, name)
    if stored is None:
        return False
    return conn.execute("DELETE FROM custom_types WHERE name = ?", (stored,)).rowcount > 0
