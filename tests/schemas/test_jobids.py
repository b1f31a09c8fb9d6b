"""Job IDs are UUIDv7: time-ordered, unique, increasing."""

from __future__ import annotations

import time
import uuid

from schemas import job_id_timestamp, new_job_id


def test_job_ids_are_version_7_rfc_9562_uuids() -> None:
    parsed = uuid.UUID(new_job_id())
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_job_ids_strictly_increase_even_within_one_millisecond() -> None:
    ids = [new_job_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_job_id_carries_its_creation_time() -> None:
    before = time.time()
    created = job_id_timestamp(new_job_id())
    assert before - 0.01 <= created <= time.time() + 0.01
