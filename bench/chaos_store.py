"""Direct access to the stores, from outside the pipeline.

The chaos scenario needs what no ``Store`` method gives: a lock held by a foreign connection on
the embedded store's file (``BEGIN EXCLUSIVE``: every other writer gets ``SQLITE_BUSY``; in WAL
mode readers go on), and a raw read of the tables (``read_store``) or collections
(``read_mongo_store``) after every process has stopped, to count records without trusting the
code under test. This is the one bench module that imports ``sqlite3``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

__all__ = [
    "StoreContent",
    "drop_mongo_database",
    "hold_exclusive_lock",
    "read_mongo_store",
    "read_store",
]


def hold_exclusive_lock(path: Path, seconds: float) -> tuple[float, float]:
    """Hold ``BEGIN EXCLUSIVE`` on the database at ``path`` for ``seconds`` (blocking).

    Waits up to 60 s for a writer in progress to finish first; returns the wall-clock times
    (``time.time()``) at which the lock was taken and released.
    """
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        taken = time.time()
        try:
            time.sleep(seconds)
        finally:
            conn.execute("ROLLBACK")
        return taken, time.time()
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class StoreContent:
    associations: dict[str, tuple[str, str, int, str]]
    """id -> (entity_id, related_id, submissions, association_types JSON)."""
    association_rows: int
    """Rows of the table (equal to ``len(associations)`` unless a key repeats)."""
    entities: set[str]
    entity_rows: int
    jobs: dict[str, int]
    """job_id -> total."""
    outcomes: dict[tuple[str, int], tuple[str, str | None]]
    """(job_id, index) -> (outcome, rejection code)."""
    outcome_rows: int
    job_kinds: dict[str, str] = field(default_factory=dict)
    """job_id -> message kind (``association``, ``entity``)."""


def read_store(path: Path) -> StoreContent:
    """Every association, entity ID, job and item outcome in the file, read in one snapshot."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0, isolation_level=None)
    try:
        conn.execute("BEGIN")
        assoc_rows = conn.execute(
            "SELECT id, entity_id, related_id, submissions, association_types FROM associations"
        ).fetchall()
        entity_rows = [row[0] for row in conn.execute("SELECT id FROM entities")]
        job_rows = conn.execute("SELECT job_id, kind, total FROM jobs").fetchall()
        outcome_rows = conn.execute("SELECT job_id, idx, outcome, code FROM job_items").fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return StoreContent(
        associations={row[0]: (row[1], row[2], int(row[3]), row[4]) for row in assoc_rows},
        association_rows=len(assoc_rows),
        entities=set(entity_rows),
        entity_rows=len(entity_rows),
        jobs={str(job): int(total) for job, _, total in job_rows},
        outcomes={(row[0], int(row[1])): (row[2], row[3]) for row in outcome_rows},
        outcome_rows=len(outcome_rows),
        job_kinds={str(job): str(kind) for job, kind, _ in job_rows},
    )


def read_mongo_store(url: str, database: str) -> StoreContent:
    """Every association, entity ID, job and item outcome in the MongoDB ``database`` (read
    after the pipeline stopped, so nothing changes meanwhile)."""
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        db = client[database]
        fields = {"entityID": 1, "relatedEntityID": 1, "submissions": 1, "associationTypes": 1}
        assoc_rows = list(db.associations.find({}, fields))
        entity_rows = [doc["_id"] for doc in db.entities.find({}, {"_id": 1})]
        job_rows = list(db.jobs.find({}, {"kind": 1, "total": 1}))
        outcome_rows = list(db.job_items.find({}, {"job": 1, "idx": 1, "outcome": 1, "code": 1}))
    finally:
        client.close()
    return StoreContent(
        associations={
            doc["_id"]: (
                doc["entityID"],
                doc["relatedEntityID"],
                int(doc["submissions"]),
                json.dumps(doc.get("associationTypes") or []),
            )
            for doc in assoc_rows
        },
        association_rows=len(assoc_rows),
        entities=set(entity_rows),
        entity_rows=len(entity_rows),
        jobs={str(doc["_id"]): int(doc["total"]) for doc in job_rows},
        outcomes={
            (doc["job"], int(doc["idx"])): (doc["outcome"], doc.get("code")) for doc in outcome_rows
        },
        outcome_rows=len(outcome_rows),
        job_kinds={str(doc["_id"]): str(doc["kind"]) for doc in job_rows},
    )


def drop_mongo_database(url: str, database: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        client.drop_database(database)
    finally:
        client.close()
