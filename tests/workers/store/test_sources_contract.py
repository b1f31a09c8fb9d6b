"""Where each link came from (SPEC §5): the ``sources`` of associations and entities, on every
store (see ``conftest.store``)."""

from __future__ import annotations

from dataclasses import replace

from tests.workers.store import store_factories as f
from workers.store.base import Store
from workers.store.records import EdgeWrite, EntityWrite, JobHeader, SourceEntry

IP = f.entity_id("ip", "203.0.113.7")
FAMILY = f.entity_id("malware-family", "qakbot")
HOST = f.entity_id("domain", "evil.example")


def feed(
    name: str,
    confidence: int | None = None,
    tlp: str | None = None,
    first: float | None = None,
    last: float | None = None,
) -> SourceEntry:
    return SourceEntry(name, "source", confidence, tlp, first, last)


def user(
    name: str = "alice", confidence: int | None = None, first: float = 1.0, last: float = 1.0
) -> SourceEntry:
    return SourceEntry(name, "user", confidence, None, first, last)


def c2(job: JobHeader, index: int, *sources: SourceEntry, name: str = "c2-of") -> EdgeWrite:
    return replace(f.edge(job, index, IP, FAMILY, name), sources=sources)


async def sources_of(store: Store, entity: str = IP, related: str = FAMILY) -> list[SourceEntry]:
    record = await store.get_association(f.association_id(entity, related))
    assert record is not None
    return list(record.sources)


async def test_a_new_association_keeps_the_user_and_the_named_source(store: Store) -> None:
    job = f.new_job()
    entries = (user(confidence=75, first=100.0, last=200.0), feed("feodo", 75, "clear", 100, 200))

    await store.write_batch(f.batch(jobs=[job], edges=[c2(job, 0, *entries)]))

    assert await sources_of(store) == [feed("feodo", 75, "clear", 100.0, 200.0), entries[0]]


async def test_a_source_reporting_again_keeps_its_highest_confidence_widest_times_latest_tlp(
    store: Store,
) -> None:
    job = f.new_job(total=3)
    await store.write_batch(
        f.batch(jobs=[job], edges=[c2(job, 0, feed("threatfox", 90, "amber", 100, 200))])
    )
    await store.write_batch(
        f.batch(edges=[c2(job, 1, feed("feodo", 50, "green", 150, 160))], now=2.0)
    )
    await store.write_batch(
        f.batch(edges=[c2(job, 2, feed("threatfox", 60, "clear", 50, 150))], now=3.0)
    )

    assert await sources_of(store) == [
        feed("feodo", 50, "green", 150.0, 160.0),  # unchanged by threatfox's report
        feed("threatfox", 90, "clear", 50.0, 200.0),
    ]


async def test_what_a_report_leaves_out_keeps_its_value(store: Store) -> None:
    job = f.new_job(total=2)
    await store.write_batch(
        f.batch(jobs=[job], edges=[c2(job, 0, feed("misp", 80, "red", 10, 20))])
    )
    await store.write_batch(f.batch(edges=[c2(job, 1, feed("misp"))], now=2.0))

    assert await sources_of(store) == [feed("misp", 80, "red", 10.0, 20.0)]


async def test_sources_of_one_pair_in_one_batch_are_all_kept(store: Store) -> None:
    job = f.new_job(total=4)
    edges = [
        c2(job, 0, feed("a", 10, "green", 5, 6)),
        c2(job, 1, feed("b", 20)),
        c2(job, 2, feed("a", 30, "amber", 4, 5)),
        c2(job, 3, feed("c", 40), name="uses"),  # another name on the same pair
    ]

    result = await store.write_batch(f.batch(jobs=[job], edges=edges))

    assert sorted(o.value for o in result.outcomes.values()) == [
        "duplicate",
        "duplicate",
        "stored",
        "stored",
    ]
    assert await sources_of(store) == [
        feed("a", 30, "amber", 4.0, 6.0),
        feed("b", 20),
        feed("c", 40),
    ]


async def test_a_duplicate_in_a_later_batch_merges_its_sources(store: Store) -> None:
    first, second = f.new_job(), f.new_job(total=2)
    await store.write_batch(f.batch(jobs=[first], edges=[c2(first, 0, feed("a", 10))]))

    await store.write_batch(
        f.batch(
            jobs=[second],
            edges=[c2(second, 0, feed("a", 50), user("bob")), c2(second, 1, feed("b", 5))],
            now=5.0,
        )
    )

    assert await sources_of(store) == [feed("a", 50), feed("b", 5), user("bob")]


async def test_a_listing_returns_the_sources(store: Store) -> None:
    job = f.new_job()
    await store.write_batch(f.batch(jobs=[job], edges=[c2(job, 0, feed("cape", None, "amber"))]))

    page, _ = await store.list_associations(FAMILY, association_type="c2-of")

    assert [list(record.sources) for record in page] == [[feed("cape", None, "amber")]]


async def test_an_entity_keeps_one_entry_per_source_and_its_children_their_own(
    store: Store,
) -> None:
    job = f.new_job(total=2)
    ip = f.entity_record("ip", "203.0.113.7")
    family = f.entity_record("malware-family", "qakbot")
    link = c2(job, 0, feed("feodo", 75))
    await store.write_batch(
        f.batch(
            jobs=[job],
            entities=[
                EntityWrite(
                    key=(job.job_id, 0),
                    entities=(ip, family),
                    edges=(link,),
                    sources=((feed("feodo", 75, None, 10, 20),), (feed("feodo", 60),)),
                )
            ],
        )
    )
    await store.write_batch(
        f.batch(
            entities=[
                EntityWrite(
                    key=(job.job_id, 1),
                    entities=(ip,),
                    sources=((feed("feodo", 50, "green", 5, 15), feed("threatfox", 100)),),
                )
            ],
            now=2.0,
        )
    )

    stored = await store.get_entities([IP, FAMILY])
    assert list(stored[IP].sources) == [
        feed("feodo", 75, "green", 5.0, 20.0),
        feed("threatfox", 100),
    ]
    assert list(stored[FAMILY].sources) == [feed("feodo", 60)]
    assert await sources_of(store) == [feed("feodo", 75)]


async def test_a_record_written_without_sources_has_none(store: Store) -> None:
    job = f.new_job()
    entity = f.entity_record("domain", "evil.example")
    await store.write_batch(
        f.batch(jobs=[job], entities=[f.entity_write(job, 0, entity)], edges=[])
    )
    found = await store.get_entity(HOST)
    assert found is not None
    assert found.sources == ()
