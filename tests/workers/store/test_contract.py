"""The ``Store`` contract, run against every implementation (see ``conftest.store``)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace

import pytest

from schemas import new_job_id
from tests.backends import StoreFactory
from tests.workers.store import store_factories as f
from workers.ground.errors import PermanentError, StoreUnavailable
from workers.store.base import Store
from workers.store.records import (
    ApiKeyRecord,
    CustomTypeRecord,
    Direction,
    EntityRecord,
    Outcome,
    WriteBatch,
)

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")
IP = f.entity_id("ip", "203.0.113.7")


# entities ---------------------------------------------------------------------------------
async def test_existing_entity_ids_returns_only_the_stored_ones(store: Store) -> None:
    job = f.new_job()
    stored = f.entity_record("domain", "evil.example")
    await store.write_batch(f.batch(jobs=[job], entities=[f.entity_write(job, 0, stored)]))

    assert await store.existing_entity_ids([stored.id, IP, URL]) == {stored.id}
    assert await store.existing_entity_ids([]) == set()


async def test_an_entity_is_stored_then_duplicate_with_merged_attributes_and_tags(
    store: Store,
) -> None:
    job = f.new_job(total=2)
    first = f.entity_record("domain", "evil.example", tags=["c2"], registrar="A", country="NL")
    again = f.entity_record("domain", "evil.example", tags=["phishing", "c2"], registrar="B")

    one = await store.write_batch(f.batch(jobs=[job], entities=[f.entity_write(job, 0, first)]))
    two = await store.write_batch(
        f.batch(entities=[f.entity_write(job, 1, again)], now=time.time() + 5)
    )

    assert one.outcomes[(job.job_id, 0)] is Outcome.STORED
    assert two.outcomes[(job.job_id, 1)] is Outcome.DUPLICATE
    entity = await store.get_entity(first.id)
    assert entity is not None
    assert entity.attributes == {"domain": "evil.example", "registrar": "B", "country": "NL"}
    assert set(entity.tags) == {"c2", "phishing"}
    assert entity.last_seen > entity.created_at


async def test_tags_that_differ_only_in_case_are_kept_once_in_the_first_spelling(
    store: Store,
) -> None:
    job = f.new_job(total=2)
    first = f.entity_record("malware", "bianlian", tags=["BianLian", "ransomware"])
    again = f.entity_record("malware", "bianlian", tags=["Bianlian", "RANSOMWARE", "c2"])

    await store.write_batch(f.batch(jobs=[job], entities=[f.entity_write(job, 0, first)]))
    await store.write_batch(f.batch(entities=[f.entity_write(job, 1, again)]))

    entity = await store.get_entity(first.id)
    assert entity is not None
    assert list(entity.tags) == ["BianLian", "ransomware", "c2"]


async def test_an_entity_item_stores_its_children_and_their_associations(store: Store) -> None:
    job = f.new_job()
    url = f.entity_record("url", "https://evil.example/payload")
    host = f.entity_record("domain", "evil.example")
    link = f.edge(job, 0, url.id, host.id, "URL Host")

    await store.write_batch(
        f.batch(jobs=[job], entities=[f.entity_write(job, 0, url, host, edges=[link])])
    )

    assert await store.existing_entity_ids([url.id, host.id]) == {url.id, host.id}
    record = await store.get_association(link.association_id)
    assert record is not None
    assert record.association_types == ("URL Host",)
    assert (await store.get_entities([url.id, host.id])).keys() == {url.id, host.id}


# association upserts ----------------------------------------------------------------------
async def test_a_new_association_is_stored_with_one_submission(store: Store) -> None:
    job = f.new_job()
    write = f.edge(job, 0, URL, HOST)

    result = await store.write_batch(f.batch(jobs=[job], edges=[write]))

    assert result.outcomes == {(job.job_id, 0): Outcome.STORED}
    assert result.skipped == frozenset()
    record = await store.get_association(write.association_id)
    assert record is not None
    assert (record.entity_id, record.related_id) == (URL, HOST)
    assert (record.entity_type, record.related_type) == ("url", "domain")
    assert record.submissions == 1
    assert record.created_by == "alice"


async def test_the_same_association_again_is_a_duplicate_that_refreshes_last_seen(
    store: Store,
) -> None:
    first, second = f.new_job(), f.new_job()
    await store.write_batch(f.batch(jobs=[first], edges=[f.edge(first, 0, URL, HOST)], now=100.0))

    result = await store.write_batch(
        f.batch(jobs=[second], edges=[f.edge(second, 0, URL, HOST)], now=200.0)
    )

    assert result.outcomes == {(second.job_id, 0): Outcome.DUPLICATE}
    record = await store.get_association(f.association_id(URL, HOST))
    assert record is not None
    assert (record.created_at, record.last_seen, record.submissions) == (100.0, 200.0, 2)


async def test_a_new_type_on_an_existing_pair_is_stored_with_both_names(store: Store) -> None:
    sample = f.entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, sample, HOST, "File DNS Query")])
    )

    result = await store.write_batch(f.batch(edges=[f.edge(job, 1, sample, HOST, "File Traffic")]))

    assert result.outcomes == {(job.job_id, 1): Outcome.STORED}
    record = await store.get_association(f.association_id(sample, HOST))
    assert record is not None
    assert sorted(record.association_types) == ["File DNS Query", "File Traffic"]
    assert record.file_action is True
    assert record.submissions == 2


async def test_the_same_association_twice_in_one_batch_is_stored_then_duplicate(
    store: Store,
) -> None:
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST), f.edge(job, 1, URL, HOST)])
    )

    assert result.outcomes == {
        (job.job_id, 0): Outcome.STORED,
        (job.job_id, 1): Outcome.DUPLICATE,
    }
    record = await store.get_association(f.association_id(URL, HOST))
    assert record is not None
    assert record.submissions == 2


async def test_concurrent_upserts_of_one_association_leave_one_record_counting_all(
    store: Store,
) -> None:
    jobs = [f.new_job() for _ in range(8)]

    results = await asyncio.gather(
        *(store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)])) for job in jobs)
    )

    outcomes = [outcome for result in results for outcome in result.outcomes.values()]
    assert sorted(outcomes) == sorted([Outcome.STORED] + [Outcome.DUPLICATE] * 7)
    page, _ = await store.list_associations(URL)
    assert len(page) == 1
    assert page[0].submissions == 8


async def test_two_names_written_at_once_on_a_new_pair_are_both_stored(store: Store) -> None:
    # Two writers create the same new pair with different type names at the same moment:
    # neither name may be lost, and each item's outcome is stored.
    samples = [f.entity_id("md5", f"{n:032x}") for n in range(20)]
    jobs = [f.new_job(total=len(samples)) for _ in range(2)]
    names = ("File DNS Query", "File Traffic")

    results = await asyncio.gather(
        *(
            store.write_batch(
                f.batch(
                    jobs=[job],
                    edges=[f.edge(job, i, sample, HOST, name) for i, sample in enumerate(samples)],
                )
            )
            for job, name in zip(jobs, names, strict=True)
        )
    )

    assert {o for result in results for o in result.outcomes.values()} == {Outcome.STORED}
    for sample in samples:
        record = await store.get_association(f.association_id(sample, HOST))
        assert record is not None
        assert sorted(record.association_types) == list(names)


async def test_deletes_of_one_batch_apply_in_batch_order(store: Store) -> None:
    sample = f.entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[
                f.edge(job, 0, sample, HOST, "File DNS Query"),
                f.edge(job, 1, sample, HOST, "File Traffic"),
            ],
        )
    )
    deletes = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(
            jobs=[deletes],
            deletes=[
                f.delete(deletes, 0, sample, HOST, "File Traffic"),
                f.delete(deletes, 1, sample, HOST, None),
            ],
        )
    )

    assert result.outcomes == {
        (deletes.job_id, 0): Outcome.DELETED,
        (deletes.job_id, 1): Outcome.DELETED,
    }
    assert await store.get_association(f.association_id(sample, HOST)) is None


async def test_a_redelivered_batch_changes_nothing_and_reports_the_skipped_keys(
    store: Store,
) -> None:
    job = f.new_job(total=3)
    batch = f.batch(
        jobs=[job],
        edges=[f.edge(job, 0, URL, HOST), f.edge(job, 1, URL, IP, "URL Host")],
        preset=[f.rejection(job, 2)],
    )
    first = await store.write_batch(batch)

    again = await store.write_batch(batch)

    assert again.outcomes == first.outcomes
    assert again.skipped == frozenset({(job.job_id, 0), (job.job_id, 1), (job.job_id, 2)})
    record = await store.get_association(f.association_id(URL, HOST))
    assert record is not None
    assert record.submissions == 1
    status = await store.get_job(job.job_id)
    assert status is not None
    assert status.counts == {"stored": 2, "rejected": 1}


async def test_only_the_redelivered_items_of_a_batch_mixing_jobs_are_skipped(
    store: Store,
) -> None:
    # Job ``earlier`` has outcomes for items 1 and 3 (3 failed, which is not final); a batch
    # then carries its items 0 to 4 with the first items of two jobs never seen before.
    earlier, fresh, other = f.new_job(total=5), f.new_job(total=2), f.new_job(total=1)
    await store.write_batch(
        f.batch(
            jobs=[earlier], edges=[f.edge(earlier, 1, URL, HOST)], preset=[f.failure(earlier, 3)]
        )
    )
    ends = [f.entity_id("domain", f"d{n}.example") for n in range(6)]

    result = await store.write_batch(
        f.batch(
            jobs=[fresh, earlier, other],
            edges=[
                f.edge(fresh, 0, URL, ends[5]),
                *(f.edge(earlier, n, URL, ends[n]) for n in (0, 2, 3, 4)),
                f.edge(earlier, 1, URL, HOST),
                f.edge(other, 0, URL, IP),
            ],
            preset=[f.rejection(fresh, 1)],
        )
    )

    assert result.skipped == frozenset({(earlier.job_id, 1)})
    assert result.outcomes == {
        (fresh.job_id, 0): Outcome.STORED,
        (fresh.job_id, 1): Outcome.REJECTED,
        **{(earlier.job_id, n): Outcome.STORED for n in (0, 2, 3, 4)},
        (earlier.job_id, 1): Outcome.STORED,
        (other.job_id, 0): Outcome.STORED,
    }
    record = await store.get_association(f.association_id(URL, HOST))
    assert record is not None
    assert record.submissions == 1


# reads ------------------------------------------------------------------------------------
async def _star(store: Store, centre: str, count: int) -> list[str]:
    """``count`` URLs pointing at the host ``centre`` (URL Host); their association IDs."""
    job = f.new_job(total=count)
    edges = [
        f.edge(job, i, f.entity_id("url", f"https://x{i}.example/"), centre) for i in range(count)
    ]
    random.shuffle(edges)
    await store.write_batch(f.batch(jobs=[job], edges=edges))
    return [e.association_id for e in edges]


async def test_an_association_is_readable_from_either_end(store: Store) -> None:
    job = f.new_job()
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))

    from_primary, _ = await store.list_associations(URL)
    from_related, _ = await store.list_associations(HOST)

    assert (
        [r.id for r in from_primary]
        == [r.id for r in from_related]
        == [f.association_id(URL, HOST)]
    )


async def test_the_direction_filter_picks_the_end(store: Store) -> None:
    job = f.new_job(total=2)
    asn = f.entity_id("asn", "15169")
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[
                f.edge(job, 0, asn, IP, "ASN to Address"),
                f.edge(job, 1, IP, HOST, "DNS PTR Record"),
            ],
        )
    )

    out, _ = await store.list_associations(IP, direction=Direction.OUT)
    into, _ = await store.list_associations(IP, direction=Direction.IN)
    both, _ = await store.list_associations(IP, direction=Direction.BOTH)

    assert [r.related_id for r in out] == [HOST]
    assert [r.entity_id for r in into] == [asn]
    assert len(both) == 2


async def test_the_type_filter_keeps_edges_carrying_that_name(store: Store) -> None:
    sample = f.entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
    job = f.new_job(total=3)
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[
                f.edge(job, 0, sample, HOST, "File DNS Query"),
                f.edge(job, 1, sample, HOST, "File Traffic"),
                f.edge(job, 2, sample, IP, "File Traffic"),
            ],
        )
    )

    dns, _ = await store.list_associations(sample, association_type="File DNS Query")
    traffic, _ = await store.list_associations(sample, association_type="File Traffic")

    assert [r.related_id for r in dns] == [HOST]
    assert sorted(r.related_id for r in traffic) == sorted([HOST, IP])


async def test_cursor_pagination_visits_every_edge_once(store: Store) -> None:
    expected = await _star(store, HOST, 23)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0

    while True:
        page, cursor = await store.list_associations(HOST, limit=5, cursor=cursor)
        seen.extend(r.id for r in page)
        pages += 1
        if cursor is None:
            break

    assert pages == 5
    assert sorted(seen) == sorted(expected)
    assert len(set(seen)) == len(seen)


async def test_a_full_last_page_has_no_next_cursor(store: Store) -> None:
    await _star(store, HOST, 4)

    page, cursor = await store.list_associations(HOST, limit=4)

    assert len(page) == 4
    assert cursor is None


async def test_a_cursor_the_store_did_not_issue_is_refused(store: Store) -> None:
    with pytest.raises(PermanentError) as raised:
        await store.list_associations(HOST, cursor="not a cursor")

    assert raised.value.code == "invalid_cursor"


# deletes ----------------------------------------------------------------------------------
async def _two_types(store: Store) -> str:
    sample = f.entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[
                f.edge(job, 0, sample, HOST, "File DNS Query"),
                f.edge(job, 1, sample, HOST, "File Traffic"),
            ],
        )
    )
    return sample


async def test_deleting_one_type_keeps_the_others(store: Store) -> None:
    sample = await _two_types(store)
    job = f.new_job()

    result = await store.write_batch(
        f.batch(jobs=[job], deletes=[f.delete(job, 0, sample, HOST, "File Traffic")])
    )

    assert result.outcomes == {(job.job_id, 0): Outcome.DELETED}
    record = await store.get_association(f.association_id(sample, HOST))
    assert record is not None
    assert record.association_types == ("File DNS Query",)


async def test_deleting_the_last_type_or_all_types_removes_the_record(store: Store) -> None:
    sample = await _two_types(store)
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(
            jobs=[job],
            deletes=[
                f.delete(job, 0, sample, HOST, "File Traffic"),
                f.delete(job, 1, sample, HOST, "File DNS Query"),
            ],
        )
    )
    assert set(result.outcomes.values()) == {Outcome.DELETED}
    assert await store.get_association(f.association_id(sample, HOST)) is None

    sample = await _two_types(store)
    everything = f.new_job()
    await store.write_batch(
        f.batch(jobs=[everything], deletes=[f.delete(everything, 0, sample, HOST, None)])
    )
    assert await store.get_association(f.association_id(sample, HOST)) is None
    assert (await store.list_associations(sample))[0] == []


async def test_deleting_what_is_not_there_is_not_found(store: Store) -> None:
    sample = await _two_types(store)
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(
            jobs=[job],
            deletes=[
                f.delete(job, 0, sample, HOST, "File Drop"),
                f.delete(job, 1, URL, IP, None),
            ],
        )
    )

    assert set(result.outcomes.values()) == {Outcome.NOT_FOUND}
    record = await store.get_association(f.association_id(sample, HOST))
    assert record is not None
    assert len(record.association_types) == 2


# jobs -------------------------------------------------------------------------------------
async def test_a_registered_job_is_queued_until_its_items_have_outcomes(store: Store) -> None:
    job = f.new_job(total=3)
    await store.register_jobs([job])

    queued = await store.get_job(job.job_id)
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))
    processing = await store.get_job(job.job_id)
    await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 1, URL, HOST)], preset=[f.rejection(job, 2)])
    )
    done = await store.get_job(job.job_id)

    assert queued is not None and queued.status == "queued"
    assert queued.owner == "alice" and queued.groups == ("analysts",)
    assert processing is not None and processing.status == "processing"
    assert done is not None and done.status == "done"
    assert done.counts == {"stored": 1, "duplicate": 1, "rejected": 1}
    assert [(e.index, e.code) for e in done.errors] == [(2, "entity_not_found")]
    assert done.updated_at is not None


async def test_registering_a_job_twice_keeps_the_first_header(store: Store) -> None:
    job = f.new_job(total=2)
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)]))

    await store.register_jobs([job])

    status = await store.get_job(job.job_id)
    assert status is not None
    assert status.counts == {"stored": 1}


async def test_a_job_whose_items_are_all_rejected_failed_with_the_first_100_errors(
    store: Store,
) -> None:
    job = f.new_job(total=150)
    rejections = [f.rejection(job, i) for i in range(150)]
    random.shuffle(rejections)

    await store.write_batch(f.batch(jobs=[job], preset=rejections))

    status = await store.get_job(job.job_id)
    assert status is not None
    assert status.status == "failed"
    assert status.counts == {"rejected": 150}
    assert [e.index for e in status.errors] == list(range(100))
    assert status.errors[0].message == "item 0: entity_not_found"


async def test_a_job_spread_over_two_batches_ends_with_one_correct_total(store: Store) -> None:
    job = f.new_job(total=4)
    first = f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST), f.edge(job, 1, URL, IP)])
    second = f.batch(jobs=[job], edges=[f.edge(job, 2, URL, HOST)], preset=[f.rejection(job, 3)])

    await store.write_batch(first)
    await store.write_batch(second)
    await store.write_batch(first)  # redelivered

    status = await store.get_job(job.job_id)
    assert status is not None
    assert status.processed == 4
    assert status.counts == {"stored": 2, "duplicate": 1, "rejected": 1}
    assert status.status == "done"


async def test_a_waiting_item_shows_what_it_waits_for_until_it_has_an_outcome(
    store: Store,
) -> None:
    job = f.new_job(total=3)
    first = f.batch(
        jobs=[job],
        edges=[f.edge(job, 0, URL, HOST)],
        waiting=[f.waiting(job, 1, IP), f.waiting(job, 2, IP, URL)],
    )
    await store.write_batch(first)
    waiting = await store.get_job(job.job_id)
    again = f.batch(jobs=[job], waiting=[f.waiting(job, 1, IP)], clears_waiting=True)
    await store.write_batch(again)
    still = await store.get_job(job.job_id)
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[f.edge(job, 1, URL, IP)],
            preset=[f.rejection(job, 2)],
            clears_waiting=True,
        )
    )
    done = await store.get_job(job.job_id)

    assert waiting is not None
    assert (waiting.status, waiting.waiting, waiting.waiting_for) == ("processing", 2, (IP, URL))
    assert still is not None and (still.waiting, still.counts) == (2, {"stored": 1})
    assert done is not None
    assert (done.status, done.waiting, done.waiting_for) == ("done", 0, ())


async def test_an_item_that_has_an_outcome_no_longer_waits(store: Store) -> None:
    job = f.new_job(total=1)
    await store.write_batch(f.batch(jobs=[job], waiting=[f.waiting(job, 0, IP)]))
    # A redelivered first look records the outcome without clearing the waiting record.
    await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, URL, IP)]))
    await store.write_batch(f.batch(jobs=[job], waiting=[f.waiting(job, 0, IP)]))

    status = await store.get_job(job.job_id)

    assert status is not None
    assert (status.status, status.waiting, status.counts) == ("done", 0, {"stored": 1})


async def test_a_failed_item_fails_its_job_until_a_replay_gives_it_its_outcome(
    store: Store,
) -> None:
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, URL, HOST)], preset=[f.failure(job, 1)])
    )
    failed = await store.get_job(job.job_id)
    replayed = await store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 1, URL, IP)]))
    done = await store.get_job(job.job_id)

    assert failed is not None
    assert (failed.status, failed.counts) == ("failed", {"stored": 1, "failed": 1})
    assert [(e.index, e.code) for e in failed.errors] == [(1, "handler_error")]
    assert replayed.outcomes == {(job.job_id, 1): Outcome.STORED}
    assert done is not None
    assert (done.status, done.counts, done.errors) == ("done", {"stored": 2}, [])


async def test_an_entity_item_with_part_keys_has_an_outcome_for_every_entity_and_link(
    store: Store,
) -> None:
    known = f.new_job(total=1)
    host = f.entity_record("domain", "evil.example")
    await store.write_batch(f.batch(jobs=[known], entities=[f.entity_write(known, 0, host)]))
    job = f.new_job(total=5)
    url = f.entity_record("url", "https://evil.example/payload")
    ip = f.entity_record("ip", "203.0.113.7")
    links = [f.edge(job, 3, url.id, host.id), f.edge(job, 4, url.id, ip.id)]
    write = f.entity_write(job, 0, url, host, ip, edges=links, part_keys=[1, 2, 3, 4])

    result = await store.write_batch(f.batch(jobs=[job], entities=[write]))
    again = await store.write_batch(f.batch(jobs=[job], entities=[write]))

    assert [result.outcomes[(job.job_id, i)] for i in range(5)] == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.STORED,
        Outcome.STORED,
        Outcome.STORED,
    ]
    assert again.skipped >= {(job.job_id, i) for i in range(5)}
    status = await store.get_job(job.job_id)
    assert status is not None
    assert (status.status, status.counts) == ("done", {"stored": 4, "duplicate": 1})


async def test_jobs_are_listed_per_owner_newest_first_with_their_counts_in_pages(
    store: Store,
) -> None:
    jobs = []
    for number in range(5):
        owner = "alice" if number != 2 else "bob"
        job = replace(f.new_job(total=2, owner=owner), job_id=new_job_id())
        jobs.append(job)
        await store.register_jobs([job])
    done = jobs[0]
    await store.write_batch(f.batch(edges=[f.edge(done, 0, URL, HOST), f.edge(done, 1, URL, HOST)]))
    alices = [job.job_id for job in reversed(jobs) if job.owner == "alice"]

    first, cursor = await store.list_jobs("alice", limit=3)
    assert [job.job_id for job in first] == alices[:3]
    assert cursor is not None
    rest, last = await store.list_jobs("alice", limit=3, cursor=cursor)
    assert [job.job_id for job in rest] == alices[3:]
    assert last is None
    assert (rest[-1].status, rest[-1].counts, rest[-1].errors) == (
        "done",
        {"stored": 1, "duplicate": 1},
        [],
    )
    everyone, _ = await store.list_jobs(None, limit=10)
    assert [job.job_id for job in everyone] == [job.job_id for job in reversed(jobs)]
    with pytest.raises(PermanentError):
        await store.list_jobs("alice", cursor="not a cursor")


async def test_an_unknown_job_is_none(store: Store) -> None:
    assert await store.get_job("0190d6a0-0000-7000-8000-000000000000") is None


async def test_purging_removes_only_jobs_created_before_the_limit(store: Store) -> None:
    now = time.time()
    old, recent = f.new_job(created_at=now - 3600), f.new_job(created_at=now)
    await store.write_batch(
        f.batch(jobs=[old, recent], edges=[f.edge(old, 0, URL, HOST), f.edge(recent, 0, URL, IP)])
    )

    purged = await store.purge_expired_jobs(now - 60)

    assert purged == 1
    assert await store.get_job(old.job_id) is None
    assert await store.get_job(recent.job_id) is not None
    assert await store.purge_expired_jobs(now - 60) == 0


async def test_purging_removes_every_expired_job_however_many(store: Store) -> None:
    now = time.time()
    old = [f.new_job(created_at=now - 3600 - n) for n in range(1200)]
    await store.write_batch(
        f.batch(jobs=old, edges=[f.edge(job, 0, URL, HOST) for job in old], now=now - 3600)
    )
    await store.write_batch(f.batch(jobs=[old[0]], waiting=[f.waiting(old[0], 1, IP)]))

    assert await store.purge_expired_jobs(now - 60) == 1200
    assert await store.get_job(old[0].job_id) is None
    assert await store.get_job(old[-1].job_id) is None


# administration ---------------------------------------------------------------------------
def _key(key_id: str, created_at: float) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=key_id,
        secret_digest="sha256:" + "0" * 64,
        user_id=f"user-{key_id}",
        roles=("reporter", "user"),
        groups=("analysts",),
        created_at=created_at,
        expires_at=created_at + 86400,
    )


async def test_api_keys_are_created_read_listed_and_revoked(store: Store) -> None:
    first, second = _key("k1", 1.0), _key("k2", 2.0)
    await store.put_api_key(first)
    await store.put_api_key(second)

    assert await store.get_api_key("k1") == first
    assert [k.key_id for k in await store.list_api_keys()] == ["k1", "k2"]
    assert await store.revoke_api_key("k1") is True
    revoked = await store.get_api_key("k1")
    assert revoked is not None and revoked.revoked is True
    assert await store.revoke_api_key("absent") is False
    assert await store.get_api_key("absent") is None


def _type(name: str, created_at: float = 1.0) -> CustomTypeRecord:
    return CustomTypeRecord(
        name=name,
        primary="File",
        non_primary=("Mutex", "Host"),
        file_action=True,
        created_at=created_at,
    )


async def test_custom_types_are_added_listed_and_deleted_by_name_in_any_case(store: Store) -> None:
    assert await store.put_custom_type(_type("File Beacon")) is True
    assert await store.put_custom_type(_type("file BEACON", 2.0)) is False
    assert await store.put_custom_type(_type("Host Sinkhole", 3.0)) is True

    listed = await store.list_custom_types()
    assert listed == [_type("File Beacon"), _type("Host Sinkhole", 3.0)]

    assert await store.delete_custom_type("FILE beacon") is True
    assert await store.delete_custom_type("File Beacon") is False
    assert [t.name for t in await store.list_custom_types()] == ["Host Sinkhole"]


async def test_a_started_store_answers_ping(store: Store) -> None:
    await store.ping()


async def test_entities_of_two_types_with_the_same_value_are_different_ends(
    store: Store,
) -> None:
    domain = f.entity_id("domain", "evil.example")
    hostname = f.entity_id("hostname", "evil.example")
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, URL, domain), f.edge(job, 1, URL, hostname)])
    )

    to_domain, _ = await store.list_associations(domain)
    to_hostname, _ = await store.list_associations(hostname)

    assert [r.related_id for r in to_domain] == [domain]
    assert [r.related_id for r in to_hostname] == [hostname]
    assert len((await store.list_associations(URL))[0]) == 2


# all or nothing ---------------------------------------------------------------------------
class _FailOnce:
    """The ``after_effects`` seam: fails the first write of a batch between its effects and
    its outcomes, as a lost connection or a crash there would."""

    def __init__(self, *, armed: bool = True) -> None:
        self.armed = armed
        self.calls = 0

    def __call__(self, batch: WriteBatch) -> None:
        if not self.armed:
            return
        self.calls += 1
        if self.calls == 1:
            raise StoreUnavailable("injected failure between the effects and the outcomes")


async def test_a_batch_that_fails_between_its_effects_and_its_outcomes_is_applied_once(
    store_factory: StoreFactory,
) -> None:
    seam = _FailOnce(armed=False)
    store = await store_factory(after_effects=seam)
    sample = await _two_types(store)
    seed = f.new_job()
    await store.write_batch(f.batch(jobs=[seed], edges=[f.edge(seed, 0, URL, IP)]))
    seam.armed = True
    job = f.new_job(total=5)
    fresh_host = f.entity_record("domain", "fresh.example")
    batch = f.batch(
        jobs=[job],
        edges=[f.edge(job, 0, URL, HOST), f.edge(job, 1, URL, IP)],
        deletes=[f.delete(job, 2, sample, HOST, "File Traffic")],
        entities=[f.entity_write(job, 3, fresh_host)],
        preset=[f.rejection(job, 4)],
    )

    with pytest.raises(StoreUnavailable):
        await store.write_batch(batch)
    result = await store.write_batch(batch)

    assert seam.calls == 2
    assert result.skipped == frozenset()
    assert result.outcomes == {
        (job.job_id, 0): Outcome.STORED,
        (job.job_id, 1): Outcome.DUPLICATE,
        (job.job_id, 2): Outcome.DELETED,
        (job.job_id, 3): Outcome.STORED,
        (job.job_id, 4): Outcome.REJECTED,
    }
    new = await store.get_association(f.association_id(URL, HOST))
    again = await store.get_association(f.association_id(URL, IP))
    trimmed = await store.get_association(f.association_id(sample, HOST))
    assert new is not None and new.submissions == 1
    assert again is not None and again.submissions == 2
    assert trimmed is not None and trimmed.association_types == ("File DNS Query",)
    status = await store.get_job(job.job_id)
    assert status is not None
    assert status.counts == {"stored": 2, "duplicate": 1, "deleted": 1, "rejected": 1}


async def test_a_failed_batch_leaves_nothing_behind(store_factory: StoreFactory) -> None:
    store = await store_factory(after_effects=_FailOnce())
    job = f.new_job(total=2)
    host = f.entity_record("domain", "evil.example")
    batch = f.batch(
        jobs=[job], edges=[f.edge(job, 0, URL, HOST)], entities=[f.entity_write(job, 1, host)]
    )

    with pytest.raises(StoreUnavailable):
        await store.write_batch(batch)

    assert await store.get_association(f.association_id(URL, HOST)) is None
    assert await store.existing_entity_ids([host.id]) == set()
    assert (await store.list_associations(URL))[0] == []


# concurrency and order within a batch -------------------------------------------------------
async def test_concurrent_new_names_on_one_new_pair_are_both_stored(store: Store) -> None:
    sample = f.entity_id("md5", "d41d8cd98f00b204e9800998ecf8427e")
    names = ["File DNS Query", "File Traffic", "File Beacon", "File Sinkhole"]
    jobs = [f.new_job() for _ in names]

    results = await asyncio.gather(
        *(
            store.write_batch(f.batch(jobs=[job], edges=[f.edge(job, 0, sample, HOST, name)]))
            for job, name in zip(jobs, names, strict=True)
        )
    )

    assert [list(r.outcomes.values()) for r in results] == [[Outcome.STORED]] * len(names)
    record = await store.get_association(f.association_id(sample, HOST))
    assert record is not None
    assert sorted(record.association_types) == sorted(names)
    assert record.submissions == len(names)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("File Traffic", None, [Outcome.DELETED, Outcome.DELETED]),
        (None, "File Traffic", [Outcome.DELETED, Outcome.NOT_FOUND]),
        ("File Drop", None, [Outcome.NOT_FOUND, Outcome.DELETED]),
    ],
)
async def test_deletes_of_one_pair_in_one_batch_apply_in_batch_order(
    store: Store, first: str | None, second: str | None, expected: list[Outcome]
) -> None:
    sample = await _two_types(store)
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(
            jobs=[job],
            deletes=[f.delete(job, 0, sample, HOST, first), f.delete(job, 1, sample, HOST, second)],
        )
    )

    assert [result.outcomes[(job.job_id, i)] for i in range(2)] == expected
    assert await store.get_association(f.association_id(sample, HOST)) is None


async def test_an_association_deleted_then_written_again_in_one_batch_starts_over(
    store: Store,
) -> None:
    sample = await _two_types(store)
    job = f.new_job(total=2)

    result = await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[f.edge(job, 1, sample, HOST, "File Drop")],
            deletes=[f.delete(job, 0, sample, HOST, None)],
        )
    )

    # edges are applied before deletes within a batch (item_keys order)
    assert result.outcomes == {(job.job_id, 1): Outcome.STORED, (job.job_id, 0): Outcome.DELETED}
    assert await store.get_association(f.association_id(sample, HOST)) is None


# reads ----------------------------------------------------------------------------------------
async def test_pages_list_associations_in_the_order_they_were_created(store: Store) -> None:
    hosts = [f.entity_id("domain", f"h{i}.example") for i in range(6)]
    first, second = f.new_job(total=3), f.new_job(total=3)
    await store.write_batch(
        f.batch(jobs=[first], edges=[f.edge(first, i, URL, h) for i, h in enumerate(hosts[:3])])
    )
    await store.write_batch(
        f.batch(
            jobs=[second],
            edges=[f.edge(second, i, URL, h) for i, h in enumerate(reversed(hosts[3:]))],
            now=time.time() + 1,
        )
    )
    expected = [*hosts[:3], *reversed(hosts[3:])]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = await store.list_associations(URL, limit=2, cursor=cursor)
        seen.extend(r.related_id for r in page)
        if cursor is None:
            break

    assert seen == expected
    both, _ = await store.list_associations(URL, direction=Direction.BOTH)
    assert [r.related_id for r in both] == expected


async def test_a_page_from_both_ends_is_one_creation_ordered_list(store: Store) -> None:
    asn = f.entity_id("asn", "15169")
    job = f.new_job(total=3)
    await store.write_batch(
        f.batch(
            jobs=[job],
            edges=[
                f.edge(job, 0, IP, HOST, "DNS PTR Record"),
                f.edge(job, 1, asn, IP, "ASN to Address"),
                f.edge(job, 2, IP, URL, "DNS PTR Record"),
            ],
        )
    )

    first, cursor = await store.list_associations(IP, limit=2)
    rest, end = await store.list_associations(IP, limit=2, cursor=cursor)

    assert [(r.entity_id, r.related_id) for r in [*first, *rest]] == [
        (IP, HOST),
        (asn, IP),
        (IP, URL),
    ]
    assert end is None


async def test_a_self_loop_is_listed_once_as_an_edge_out(store: Store) -> None:
    malware = f.entity_id("malware", "emotet")
    job = f.new_job()
    await store.write_batch(
        f.batch(jobs=[job], edges=[f.edge(job, 0, malware, malware, "variant-of")])
    )

    out, _ = await store.list_associations(malware, direction=Direction.OUT)
    into, _ = await store.list_associations(malware, direction=Direction.IN)
    both, _ = await store.list_associations(malware, direction=Direction.BOTH)

    assert len(out) == 1
    assert into == []
    assert [r.id for r in both] == [r.id for r in out]


@pytest.mark.parametrize("suffix", ["\n", " ", "\t"])
async def test_a_cursor_with_anything_after_it_is_refused(store: Store, suffix: str) -> None:
    await _star(store, HOST, 3)
    _, cursor = await store.list_associations(HOST, limit=1)
    assert cursor is not None

    with pytest.raises(PermanentError) as raised:
        await store.list_associations(HOST, limit=1, cursor=cursor + suffix)

    assert raised.value.code == "invalid_cursor"


async def test_a_cursor_past_a_64_bit_position_is_refused(store: Store) -> None:
    for cursor in [str(2**63), f"{2**63}-{f.association_id(URL, HOST)}"]:
        with pytest.raises(PermanentError) as raised:
            await store.list_associations(HOST, cursor=cursor)
        assert raised.value.code == "invalid_cursor"


async def test_tags_keep_the_order_they_were_first_seen_in(store: Store) -> None:
    job = f.new_job(total=2)
    first = f.entity_record("domain", "evil.example", tags=["c2", "botnet"])
    again = f.entity_record("domain", "evil.example", tags=["phishing", "c2", "apt"])

    await store.write_batch(f.batch(jobs=[job], entities=[f.entity_write(job, 0, first)]))
    await store.write_batch(f.batch(entities=[f.entity_write(job, 1, again)]))

    entity = await store.get_entity(first.id)
    assert entity is not None
    assert entity.tags == ("c2", "botnet", "phishing", "apt")


async def test_attributes_that_look_like_operators_are_stored_as_data(store: Store) -> None:
    job = f.new_job(total=2)
    odd: dict[str, object] = {"domain": "evil.example", "$set": "$x", "a.b": {"$gt": 1}}
    record = EntityRecord(id=f.entity_id("domain", "evil.example"), type="domain", attributes=odd)

    await store.write_batch(f.batch(jobs=[job], entities=[f.entity_write(job, 0, record)]))
    await store.write_batch(f.batch(entities=[f.entity_write(job, 1, record)]))

    entity = await store.get_entity(record.id)
    assert entity is not None
    assert entity.attributes == {"domain": "evil.example", "$set": "$x", "a.b": {"$gt": 1}}


async def test_custom_type_names_are_the_same_name_in_any_unicode_case(store: Store) -> None:
    assert await store.put_custom_type(_type("Straße Beacon")) is True
    assert await store.put_custom_type(_type("STRASSE BEACON", 2.0)) is False
    assert await store.put_custom_type(_type("Ärger Link", 3.0)) is True
    assert await store.put_custom_type(_type("ärger link", 4.0)) is False

    assert await store.delete_custom_type("strasse beacon") is True
    assert await store.delete_custom_type("ÄRGER LINK") is True
    assert await store.list_custom_types() == []
