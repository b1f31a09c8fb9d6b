"""Job IDs are UUIDv7: time-ordered, unique, increasing."""

from __future__ import annotations

import os
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


def _ids_from_forked_children(children: int, count: int) -> list[set[str]]:
    """Fork ``children`` processes that each make ``count`` job IDs at the same moment (they
    wait for one start signal) and send them back."""
    start_read, start_write = os.pipe()
    results = []
    for _ in range(children):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a child
            try:
                os.close(read_end)
                os.read(start_read, 1)
                ids = "\n".join(new_job_id() for _ in range(count))
                with os.fdopen(write_end, "w") as out:
                    out.write(ids)
            finally:
                os._exit(0)
        os.close(write_end)
        results.append((pid, read_end))
    os.write(start_write, b"x" * children)
    sets = []
    for pid, read_end in results:
        with os.fdopen(read_end) as incoming:
            sets.append(set(incoming.read().split("\n")))
        os.waitpid(pid, 0)
    os.close(start_read)
    os.close(start_write)
    return sets


def _random_part(job_id: str) -> str:
    return job_id.replace("-", "")[-16:]


def test_forked_children_make_different_job_ids() -> None:
    """Two children forked from one server process make job IDs in the same milliseconds; their
    random bits differ, so their IDs cannot collide whatever the clock does."""
    new_job_id()  # the parent has drawn from its generator before it forks, as a server does
    first, second = _ids_from_forked_children(2, 2000)
    assert len(first) == len(second) == 2000
    assert first.isdisjoint(second)
    assert {_random_part(i) for i in first}.isdisjoint({_random_part(i) for i in second})
