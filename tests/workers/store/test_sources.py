"""How the sources of a record merge (``workers.store.sources``), tested without a store."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Provenance
from workers.store.records import SourceEntry
from workers.store.sources import (
    SOURCE,
    USER,
    merge_source,
    merge_sources,
    ordered_sources,
    source_document,
    source_entries,
    source_from_document,
)


def _entry(name: str = "feodo", kind: str = "source", **values: object) -> SourceEntry:
    return SourceEntry(name, kind, **values)  # type: ignore[arg-type]


def test_a_submission_without_provenance_is_the_users_report_at_submission_time() -> None:
    assert source_entries("alice", None, 50.0) == (SourceEntry("alice", USER, None, None, 50, 50),)


def test_a_named_source_gets_an_entry_beside_the_users_with_the_same_values() -> None:
    given = Provenance(source="feodo", confidence=75, tlp="amber", first_seen=1, last_seen=9)
    assert source_entries("alice", given, 50.0) == (
        SourceEntry("alice", USER, 75, "amber", 1, 9),
        SourceEntry("feodo", SOURCE, 75, "amber", 1, 9),
    )


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [(None, None, (50.0, 50.0)), (3.0, None, (3.0, 3.0)), (None, 7.0, (7.0, 7.0))],
)
def test_a_missing_time_stands_in_for_the_other_else_the_submission_time(
    first: float | None, last: float | None, expected: tuple[float, float]
) -> None:
    (entry,) = source_entries("alice", Provenance(first_seen=first, last_seen=last), 50.0)
    assert (entry.first_seen, entry.last_seen) == expected


def test_merging_keeps_the_highest_confidence_widest_times_and_latest_tlp() -> None:
    old = _entry(confidence=90, tlp="red", first_seen=10.0, last_seen=20.0)
    new = _entry(confidence=40, tlp="green", first_seen=5.0, last_seen=15.0)
    assert merge_source(old, new) == _entry(
        confidence=90, tlp="green", first_seen=5.0, last_seen=20.0
    )
    assert merge_source(old, _entry()) == old
    assert merge_source(_entry(), old) == old


def test_a_report_from_one_source_changes_no_other_sources_entry() -> None:
    feodo, threatfox = _entry("feodo", confidence=50), _entry("threatfox", confidence=60)
    merged = merge_sources([feodo, threatfox], [_entry("threatfox", confidence=99)])
    assert merged == (feodo, _entry("threatfox", confidence=99))
    assert merge_sources([feodo], [_entry("feodo", USER)]) == (feodo, _entry("feodo", USER))


def test_reads_list_named_sources_first_then_users_each_by_name() -> None:
    entries = [_entry("b", USER), _entry("z"), _entry("a", USER), _entry("c")]
    assert [(e.kind, e.name) for e in ordered_sources(entries)] == [
        (SOURCE, "c"),
        (SOURCE, "z"),
        (USER, "a"),
        (USER, "b"),
    ]


@given(
    st.builds(
        SourceEntry,
        name=st.text(min_size=1, max_size=10),
        kind=st.sampled_from([SOURCE, USER]),
        confidence=st.none() | st.integers(0, 100),
        tlp=st.none() | st.sampled_from(["clear", "red"]),
        first_seen=st.none() | st.floats(0, 4e9),
        last_seen=st.none() | st.floats(0, 4e9),
    )
)
def test_a_source_document_reads_back_as_the_same_entry(entry: SourceEntry) -> None:
    assert source_from_document(source_document(entry)) == entry
