"""What a batch does to the associations it touches, decided in memory, item by item: the rules
every store applies (``workers.store.sqlite.batch``, ``workers.store.mongo.plan``).

- an association item on a pair with no record creates it (``stored``); on a record without its
  type name adds the name (``stored``); on one with the name counts a submission
  (``duplicate``); every item that reaches a record counts one submission;
- a delete removes one type name (or every name when none is given) and the record with its
  last name (``deleted``), or finds nothing to remove (``not_found``); an association written
  after its record was deleted in the same batch starts again from one submission;
- every item merges its source entries into the record's (``sources.merge_sources``).

An adapter loads the records the batch touches (``BatchEdges.load``), applies the items in
batch order, then writes back the ``changed`` ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from workers.store.records import EdgeDelete, EdgeWrite, Outcome, SourceEntry
from workers.store.sources import merge_sources

__all__ = ["BatchEdges", "EdgeState"]

Stored = TypeVar("Stored", int, str)
"""What an adapter keeps to address a stored record: SQLite its ``seq``, MongoDB its ``_id``."""


class EdgeState(Generic[Stored]):
    """One association record as the batch has made it so far.

    ``stored``: the adapter's handle on the stored record (SQLite its ``seq``, MongoDB its
    ``_id``), None when the batch creates it; ``first``: the write that creates it then.
    ``alive`` is False once a delete has removed its last name; ``dirty`` once anything
    changed it."""

    __slots__ = (
        "alive",
        "dirty",
        "file_action",
        "first",
        "names",
        "sources",
        "stored",
        "submissions",
    )

    def __init__(
        self,
        names: list[str],
        submissions: int,
        file_action: bool,
        sources: tuple[SourceEntry, ...],
        stored: Stored | None,
    ) -> None:
        self.names = names
        self.submissions = submissions
        self.file_action = file_action
        self.sources = sources
        self.stored: Stored | None = stored
        self.first: EdgeWrite | None = None
        self.alive = stored is not None
        self.dirty = False


class BatchEdges(Generic[Stored]):
    """The associations of one batch: the stored ones loaded once, items applied in order."""

    def __init__(self) -> None:
        self.edges: dict[str, EdgeState[Stored]] = {}  # loaded ones first, then new ones

    def load(
        self,
        association_id: str,
        names: list[str],
        submissions: int,
        file_action: bool,
        sources: tuple[SourceEntry, ...],
        stored: Stored,
    ) -> None:
        """A stored record the batch may touch, as read inside its transaction."""
        self.edges[association_id] = EdgeState(names, submissions, file_action, sources, stored)

    def upsert(self, edge: EdgeWrite) -> Outcome:
        state = self.edges.get(edge.association_id)
        if state is None:
            state = self.edges[edge.association_id] = EdgeState[Stored]([], 0, False, (), None)
        state.dirty = True
        if not state.alive:  # new, or deleted earlier in this batch: written from scratch
            state.alive = True
            state.names = [edge.association_type]
            state.submissions = 1
            state.file_action = edge.file_action
            state.sources = merge_sources((), edge.sources)
            if state.stored is None:
                state.first = edge
            return Outcome.STORED
        state.submissions += 1
        state.file_action = state.file_action or edge.file_action
        if edge.sources:
            state.sources = merge_sources(state.sources, edge.sources)
        if edge.association_type in state.names:
            return Outcome.DUPLICATE
        state.names.append(edge.association_type)
        return Outcome.STORED

    def delete(self, delete: EdgeDelete) -> Outcome:
        state = self.edges.get(delete.association_id)
        if state is None or not state.alive:
            return Outcome.NOT_FOUND
        if delete.association_type is None:
            state.names = []
        else:
            kept = [name for name in state.names if name != delete.association_type]
            if len(kept) == len(state.names):
                return Outcome.NOT_FOUND
            state.names = kept
        state.dirty = True
        state.alive = bool(state.names)
        return Outcome.DELETED

    def created(self) -> Iterator[str]:
        """The IDs of the records the batch creates, in the order it first wrote them."""
        return (aid for aid, state in self.edges.items() if state.stored is None)

    def changed(self) -> Iterator[tuple[str, EdgeState[Stored]]]:
        """The records the batch changed, by association ID: a record no longer ``alive`` is
        to be deleted (when ``stored``), one not ``stored`` inserted from ``first``."""
        return ((aid, state) for aid, state in self.edges.items() if state.dirty)
