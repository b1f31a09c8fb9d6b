"""The decisions both store adapters share (``workers.store.logic``), tested without a store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.workers.store import store_factories as f
from workers.ground.errors import PermanentError
from workers.store.logic import (
    DEFAULT_JOB_TTL,
    INVALID_CURSOR,
    MAX_ITEM_ERRORS,
    ORDER_CURSOR,
    SEQUENCE_CURSOR,
    checked_cursor,
    fresh_items,
    item_keys,
    job_expires_at,
    job_status,
    jobs_visible_since,
    key_expires_at,
    order_after,
    order_cursor,
    page_limit,
    reservation_holds,
    sequence_after,
    split_page,
    type_name_key,
)
from workers.store.mongo import MongoStore
from workers.store.records import ItemKey, JobHeader, WriteBatch
from workers.store.sqlite import SqliteStore

URL = f.entity_id("url", "https://evil.example/payload")
HOST = f.entity_id("domain", "evil.example")
IP = f.entity_id("ip", "203.0.113.7")
DAY = 24 * 3600.0


# skipping items already recorded ----------------------------------------------------------
def _mixed_batch(job: JobHeader) -> WriteBatch:
    """One item of each kind, listed out of apply order: preset, deletes, edges, entities."""
    return f.batch(
        jobs=[job],
        preset=[f.rejection(job, 0)],
        deletes=[f.delete(job, 1, URL, IP, None)],
        edges=[f.edge(job, 2, URL, HOST)],
        entities=[f.entity_write(job, 3, f.entity_record("domain", "evil.example"))],
    )


def test_item_keys_lists_entity_writes_then_edges_then_deletes_then_presets() -> None:
    job = f.new_job(total=4)

    keys = item_keys(_mixed_batch(job))

    assert keys == [(job.job_id, 3), (job.job_id, 2), (job.job_id, 1), (job.job_id, 0)]


def test_a_batch_with_nothing_recorded_is_applied_whole() -> None:
    job = f.new_job(total=4)
    batch = _mixed_batch(job)

    fresh = fresh_items(batch, set())

    assert (fresh.entities, fresh.edges, fresh.deletes, fresh.preset) == (
        batch.entities,
        batch.edges,
        batch.deletes,
        batch.preset,
    )


def test_items_with_a_recorded_outcome_are_not_applied_again() -> None:
    job = f.new_job(total=4)
    batch = _mixed_batch(job)

    fresh = fresh_items(batch, {(job.job_id, 2), (job.job_id, 0)})

    assert fresh.edges == [] and fresh.preset == []
    assert item_keys(fresh) == [(job.job_id, 3), (job.job_id, 1)]


def test_a_key_repeated_within_a_batch_is_applied_once_the_first_time() -> None:
    job = f.new_job(total=2)
    first = f.edge(job, 0, URL, HOST)
    again = f.edge(job, 0, URL, IP)
    batch = f.batch(jobs=[job], edges=[first, again, f.edge(job, 1, URL, IP)])

    fresh = fresh_items(batch, set())

    assert fresh.edges == [first, batch.edges[2]]


def test_a_key_taken_by_an_earlier_kind_drops_the_later_item() -> None:
    job = f.new_job()
    edge = f.edge(job, 0, URL, HOST)

    fresh = fresh_items(f.batch(jobs=[job], edges=[edge], preset=[f.rejection(job, 0)]), ())

    assert fresh.edges == [edge]
    assert fresh.preset == []


@st.composite
def _batches(draw: st.DrawFn) -> tuple[WriteBatch, set[ItemKey]]:
    """A batch whose items reuse a few indexes of two jobs, and some of its keys recorded."""
    jobs = [f.new_job(total=6), f.new_job(total=6)]
    index = st.integers(min_value=0, max_value=5)
    job = st.sampled_from(jobs)
    edges = draw(st.lists(st.builds(lambda j, i: f.edge(j, i, URL, HOST), job, index)))
    deletes = draw(st.lists(st.builds(lambda j, i: f.delete(j, i, URL, HOST, None), job, index)))
    preset = draw(st.lists(st.builds(f.rejection, job, index)))
    batch = f.batch(jobs=jobs, edges=edges, deletes=deletes, preset=preset)
    keys = item_keys(batch)
    recorded = set(draw(st.lists(st.sampled_from(keys)))) if keys else set()
    return batch, recorded


@given(_batches())
def test_fresh_items_are_each_unrecorded_key_once_in_first_occurrence_order(
    drawn: tuple[WriteBatch, set[ItemKey]],
) -> None:
    batch, recorded = drawn

    fresh = fresh_items(batch, recorded)

    expected = [key for key in dict.fromkeys(item_keys(batch)) if key not in recorded]
    assert item_keys(fresh) == expected
    assert all(edge in batch.edges for edge in fresh.edges)
    assert all(preset in batch.preset for preset in fresh.preset)


# cursors ----------------------------------------------------------------------------------
def test_no_cursor_asks_for_the_first_page() -> None:
    assert checked_cursor(None, SEQUENCE_CURSOR) is None
    assert checked_cursor(None, ORDER_CURSOR) is None
    assert sequence_after(None) == 0
    assert order_after(None) is None


@pytest.mark.parametrize(
    ("cursor", "shape"),
    [
        ("0", SEQUENCE_CURSOR),
        ("42", SEQUENCE_CURSOR),
        ("9" * 19, SEQUENCE_CURSOR),
        (order_cursor(42, f.association_id(URL, HOST)), ORDER_CURSOR),
        (order_cursor(0, "a-non-hash-id"), ORDER_CURSOR),
    ],
)
def test_a_cursor_of_the_shape_the_store_issues_is_accepted_unchanged(
    cursor: str, shape: re.Pattern[str]
) -> None:
    assert checked_cursor(cursor, shape) == cursor


@pytest.mark.parametrize(
    ("cursor", "shape"),
    [
        ("", SEQUENCE_CURSOR),
        ("not a cursor", SEQUENCE_CURSOR),
        ("-1", SEQUENCE_CURSOR),
        ("1" * 20, SEQUENCE_CURSOR),
        (f.association_id(URL, HOST), SEQUENCE_CURSOR),
        ("42\n", SEQUENCE_CURSOR),
        ("", ORDER_CURSOR),
        ("42", ORDER_CURSOR),
        (f.association_id(URL, HOST), ORDER_CURSOR),
        ("42-", ORDER_CURSOR),
        ("42-has space", ORDER_CURSOR),
        (order_cursor(42, f.association_id(URL, HOST)) + "\n", ORDER_CURSOR),
    ],
)
def test_a_cursor_of_another_shape_is_refused_as_invalid(
    cursor: str, shape: re.Pattern[str]
) -> None:
    with pytest.raises(PermanentError) as raised:
        checked_cursor(cursor, shape)

    assert raised.value.code == INVALID_CURSOR == "invalid_cursor"


def test_a_sequence_cursor_past_a_signed_64_bit_integer_is_invalid_not_an_overflow() -> None:
    assert sequence_after(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(PermanentError) as raised:
        sequence_after(str(2**63))

    assert raised.value.code == INVALID_CURSOR


def test_an_order_cursor_names_the_record_it_was_made_from() -> None:
    aid = f.association_id(URL, HOST)

    assert order_after(order_cursor(7, aid)) == (7, aid)
    assert order_after(order_cursor(3, "id-with-dashes")) == (3, "id-with-dashes")
    with pytest.raises(PermanentError):
        order_after(order_cursor(2**63, aid))


def test_custom_type_names_are_the_same_after_unicode_case_folding() -> None:
    assert type_name_key("File Beacon") == type_name_key("FILE beacon")
    assert type_name_key("Straße Beacon") == type_name_key("STRASSE BEACON")
    assert type_name_key("Ärger Link") == type_name_key("ärger link")
    assert type_name_key("File Beacon") != type_name_key("File Beacons")


@pytest.mark.parametrize(("asked", "held"), [(-5, 1), (0, 1), (1, 1), (7, 7), (1000, 1000)])
def test_a_page_holds_the_limit_asked_for_and_at_least_one_record(asked: int, held: int) -> None:
    assert page_limit(asked) == held


def test_a_page_with_rows_left_over_ends_with_the_cursor_of_its_last_row() -> None:
    page, cursor = split_page([10, 11, 12, 13], 3, str)

    assert list(page) == [10, 11, 12]
    assert cursor == "12"


@pytest.mark.parametrize("rows", [[], [10], [10, 11, 12]])
def test_a_page_with_no_row_left_over_is_the_last(rows: list[int]) -> None:
    page, cursor = split_page(rows, 3, str)

    assert list(page) == rows
    assert cursor is None


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=-2, max_value=12))
def test_paging_with_split_page_visits_every_row_once(count: int, asked: int) -> None:
    rows = list(range(1, count + 1))  # sequence numbers, as the embedded store pages them
    limit = page_limit(asked)
    seen: list[int] = []
    after = 0
    pages = 0
    while True:
        read = [row for row in rows if row > after][: limit + 1]
        page, cursor = split_page(read, limit, str)
        seen.extend(page)
        pages += 1
        if cursor is None:
            break
        after = int(cursor)

    assert seen == rows
    assert pages == max(1, -(-count // limit))


# job TTL ----------------------------------------------------------------------------------
async def test_both_stores_keep_jobs_seven_days_unless_told(tmp_path: Path) -> None:
    mongo = MongoStore("mongodb://127.0.0.1:1/", "unused")
    await mongo.close()

    assert DEFAULT_JOB_TTL == 7 * DAY
    assert SqliteStore(tmp_path / "store.sqlite3").job_ttl == DEFAULT_JOB_TTL
    assert mongo.job_ttl == DEFAULT_JOB_TTL


def test_a_job_is_shown_until_its_ttl_has_passed_and_not_after() -> None:
    now = 1_700_000_000.0
    since = jobs_visible_since(now, DAY)

    assert now - DAY >= since  # created exactly one TTL ago: still shown
    assert not now - DAY - 0.5 >= since  # half a second older: hidden


@given(st.integers(min_value=0, max_value=4_000_000_000), st.integers(1, 400 * 24 * 3600))
def test_a_job_expires_when_it_stops_being_shown(created_at: int, ttl: int) -> None:
    # whole seconds, so that the sums are exact and the edges can be compared with ==
    expires = job_expires_at(float(created_at), float(ttl))

    assert expires == created_at + ttl
    assert jobs_visible_since(expires, ttl) == created_at  # the last moment it is shown
    assert jobs_visible_since(expires + 1, ttl) > created_at  # hidden a second later


# job status -------------------------------------------------------------------------------
def test_a_job_status_adds_up_its_outcomes_and_was_updated_at_the_latest() -> None:
    job = f.new_job(total=5)

    status = job_status(
        job, [("stored", 3, 20.0), ("rejected", 1, 30.0), ("duplicate", 1, 10.0)], []
    )

    assert (status.job_id, status.owner, status.groups, status.total) == (
        job.job_id,
        "alice",
        ("analysts",),
        5,
    )
    assert status.counts == {"stored": 3, "rejected": 1, "duplicate": 1}
    assert status.updated_at == 30.0
    assert status.status == "done"


def test_a_job_without_outcomes_is_queued_and_never_updated() -> None:
    status = job_status(f.new_job(total=2), [], [])

    assert status.counts == {}
    assert status.updated_at is None
    assert status.status == "queued"


def test_a_job_status_reports_the_first_100_item_errors() -> None:
    job = f.new_job(total=150)
    rejected = [(i, "entity_not_found", f"item {i}") for i in range(150)]

    status = job_status(job, [("rejected", 150, 1.0)], iter(rejected))

    assert MAX_ITEM_ERRORS == 100
    assert [e.index for e in status.errors] == list(range(100))
    assert status.errors[-1].message == "item 99"
    assert status.status == "failed"


def test_an_item_error_without_code_or_message_reads_as_empty_strings() -> None:
    rows: list[tuple[int, str | None, str | None]] = [(4, None, None), (7, "bad_type", None)]

    status = job_status(f.new_job(total=9), [], rows)

    assert [(e.index, e.code, e.message) for e in status.errors] == [
        (4, "", ""),
        (7, "bad_type", ""),
    ]


# idempotency keys ---------------------------------------------------------------------------
def test_a_key_holds_until_its_window_ends_when_it_may_be_removed() -> None:
    assert reservation_holds(1000.0, 1000.0 + 59.0, 60.0)
    assert not reservation_holds(1000.0, 1000.0 + 60.0, 60.0)
    assert key_expires_at(1000.0, 60.0) == 1060.0
