"""The association rules both stores apply to a batch, item by item (``BatchEdges``); the
store contract suites check them again through each store."""

from __future__ import annotations

from workers.store.edges import BatchEdges
from workers.store.records import EdgeDelete, EdgeWrite, Outcome, SourceEntry

PAIR = "assoc-1"


def write(index: int, name: str, source: str = "feed-a", pair: str = PAIR) -> EdgeWrite:
    return EdgeWrite(
        key=("job-1", index),
        association_id=pair,
        entity_id="ip-1",
        related_id="domain-1",
        entity_type="ip",
        related_type="domain",
        association_type=name,
        file_action=False,
        created_by="alice",
        sources=(SourceEntry(source, "source"),),
    )


def delete(index: int, name: str | None) -> EdgeDelete:
    return EdgeDelete(key=("job-1", index), association_id=PAIR, association_type=name)


def test_a_new_pair_is_stored_then_its_name_again_is_a_duplicate_and_a_new_name_stored() -> None:
    edges = BatchEdges[int]()
    first = write(0, "Resolved To")
    assert edges.upsert(first) is Outcome.STORED
    assert edges.upsert(write(1, "Resolved To", "feed-b")) is Outcome.DUPLICATE
    assert edges.upsert(write(2, "Hosted On")) is Outcome.STORED
    ((aid, state),) = edges.changed()
    assert (aid, state.stored, state.first) == (PAIR, None, first)
    assert state.names == ["Resolved To", "Hosted On"]
    assert state.submissions == 3
    assert [entry.name for entry in state.sources] == ["feed-a", "feed-b"]


def test_a_delete_takes_one_name_then_the_record_with_its_last() -> None:
    edges = BatchEdges[int]()
    edges.load(PAIR, ["Resolved To", "Hosted On"], 4, False, (), stored=7)
    assert list(edges.changed()) == []
    assert edges.delete(delete(0, "Uses")) is Outcome.NOT_FOUND
    assert edges.delete(delete(1, "Resolved To")) is Outcome.DELETED
    ((_, state),) = edges.changed()
    assert (state.alive, state.names) == (True, ["Hosted On"])
    assert edges.delete(delete(2, None)) is Outcome.DELETED
    assert (state.alive, state.stored) == (False, 7)
    assert edges.delete(delete(3, None)) is Outcome.NOT_FOUND


def test_a_write_after_a_delete_in_the_same_batch_starts_afresh() -> None:
    edges = BatchEdges[int]()
    edges.load(PAIR, ["Resolved To"], 9, True, (SourceEntry("old", "source"),), stored=3)
    assert edges.delete(delete(0, None)) is Outcome.DELETED
    assert edges.upsert(write(1, "Hosted On")) is Outcome.STORED
    ((_, state),) = edges.changed()
    assert (state.alive, state.names, state.submissions) == (True, ["Hosted On"], 1)
    assert (state.file_action, [entry.name for entry in state.sources]) == (False, ["feed-a"])
    assert (state.stored, state.first) == (3, None)  # the stored record is updated in place


def test_nothing_stored_and_nothing_written_is_not_found() -> None:
    edges = BatchEdges[str]()
    assert edges.delete(delete(0, None)) is Outcome.NOT_FOUND
    assert list(edges.changed()) == []


def test_created_names_the_new_records_in_the_order_the_batch_first_wrote_them() -> None:
    edges = BatchEdges[str]()
    edges.load("stored-1", ["Resolved To"], 1, False, (), stored="stored-1")
    for index, aid in enumerate(("new-b", "new-a", "stored-1", "new-b")):
        edges.upsert(write(index, "Hosted On", pair=aid))
    assert list(edges.created()) == ["new-b", "new-a"]
