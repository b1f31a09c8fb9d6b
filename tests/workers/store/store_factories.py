"""Factories of store records for the store tests: real IDs, one job per call unless given."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence

from workers.store.records import (
    EdgeDelete,
    EdgeWrite,
    EntityRecord,
    EntityWrite,
    JobHeader,
    Outcome,
    PresetOutcome,
    WaitingItem,
    WriteBatch,
)


def entity_id(type_name: str, value: str) -> str:
    return f"{type_name}-{hashlib.sha3_256(value.encode()).hexdigest()}"


def association_id(entity: str, related: str) -> str:
    return hashlib.sha3_256((entity + related).encode()).hexdigest()


def new_job(total: int = 1, created_at: float | None = None, owner: str = "alice") -> JobHeader:
    return JobHeader(
        job_id=str(uuid.uuid4()),
        kind="association",
        owner=owner,
        groups=("analysts",),
        total=total,
        created_at=time.time() if created_at is None else created_at,
    )


def edge(
    job: JobHeader,
    index: int,
    entity: str,
    related: str,
    type_name: str = "URL Host",
) -> EdgeWrite:
    return EdgeWrite(
        key=(job.job_id, index),
        association_id=association_id(entity, related),
        entity_id=entity,
        related_id=related,
        entity_type=entity.split("-", 1)[0],
        related_type=related.split("-", 1)[0],
        association_type=type_name,
        file_action=type_name.startswith("File"),
        created_by=job.owner,
    )


def url_host(
    job: JobHeader, index: int, url: str, host: str, type_name: str = "URL Host"
) -> EdgeWrite:
    return edge(job, index, entity_id("url", url), entity_id("domain", host), type_name)


def delete(
    job: JobHeader, index: int, entity: str, related: str, type_name: str | None
) -> EdgeDelete:
    return EdgeDelete(
        key=(job.job_id, index),
        association_id=association_id(entity, related),
        association_type=type_name,
    )


def entity_record(
    type_name: str, value: str, *, tags: Sequence[str] = (), **attributes: object
) -> EntityRecord:
    return EntityRecord(
        id=entity_id(type_name, value),
        type=type_name,
        attributes={type_name: value, **attributes},
        tags=tuple(tags),
    )


def entity_write(
    job: JobHeader,
    index: int,
    *records: EntityRecord,
    edges: Sequence[EdgeWrite] = (),
    part_keys: Sequence[int] = (),
) -> EntityWrite:
    return EntityWrite(
        key=(job.job_id, index),
        entities=tuple(records),
        edges=tuple(edges),
        part_keys=tuple((job.job_id, i) for i in part_keys),
    )


def rejection(job: JobHeader, index: int, code: str = "entity_not_found") -> PresetOutcome:
    return PresetOutcome(
        key=(job.job_id, index),
        outcome=Outcome.REJECTED,
        code=code,
        message=f"item {index}: {code}",
    )


def failure(job: JobHeader, index: int) -> PresetOutcome:
    return PresetOutcome(
        key=(job.job_id, index),
        outcome=Outcome.FAILED,
        code="handler_error",
        message=f"item {index}: the handler failed",
    )


def waiting(job: JobHeader, index: int, *entity_ids: str) -> WaitingItem:
    return WaitingItem(key=(job.job_id, index), entity_ids=entity_ids, since=time.time())


def batch(
    *,
    jobs: Sequence[JobHeader] = (),
    edges: Sequence[EdgeWrite] = (),
    deletes: Sequence[EdgeDelete] = (),
    entities: Sequence[EntityWrite] = (),
    preset: Sequence[PresetOutcome] = (),
    waiting: Sequence[WaitingItem] = (),
    clears_waiting: bool = False,
    now: float | None = None,
) -> WriteBatch:
    return WriteBatch(
        now=time.time() if now is None else now,
        jobs=list(jobs),
        edges=list(edges),
        deletes=list(deletes),
        entities=list(entities),
        preset=list(preset),
        waiting=list(waiting),
        clears_waiting=clears_waiting,
    )
