"""What one batch does to the entities and associations it touches, decided in memory.

``apply_batch`` reads every record a batch touches (one query per collection, inside the
batch's transaction), hands them to ``EntityChanges`` and ``AssociationChanges``, applies the
items in batch order, and writes back what changed with one bulk write per collection. The
rules are those of the embedded store (``workers.store.sqlite.batch``), item by item:

- an association item on a pair with no record creates it (``stored``); on a record without its
  type name adds the name (``stored``); on one with the name counts a submission
  (``duplicate``); every item that reaches a record counts one submission and sets
  ``lastSeen``;
- a delete removes one type name (or every name when none is given) and the record with its
  last name (``deleted``), or finds nothing to remove (``not_found``); an association written
  after its record was deleted in the same batch starts again from one submission;
- an entity item merges attributes (later keys win), keeps the latest reputation given, and
  appends tags (compared case-insensitively: ``schemas.fold_tags``) and ``visibleBy`` values
  not there yet, in the order first seen;
- every item merges its source entries into the record's (``sources.merge_sources``).

Deciding from what was read is right only while nobody else changes those records before the
batch commits: the transaction guarantees it (a concurrent change is a write conflict, and the
whole batch is tried again on a fresh snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import DeleteOne, InsertOne, UpdateOne

from schemas import fold_tags
from workers.store.mongo import docs as d
from workers.store.records import EdgeDelete, EdgeWrite, EntityRecord, Outcome, SourceEntry
from workers.store.sources import merge_sources

Write = InsertOne[d.Doc] | UpdateOne | DeleteOne


class _Edge:
    __slots__ = (
        "alive",
        "created",
        "dirty",
        "file_action",
        "names",
        "sources",
        "stored",
        "submissions",
    )

    def __init__(self, doc: d.Doc | None) -> None:
        self.stored = doc is not None
        self.names: list[str] = list(doc.get("associationTypes") or ()) if doc else []
        self.submissions: int = int(doc.get("submissions", 0)) if doc else 0
        self.file_action = bool(doc.get("fileAction")) if doc else False
        self.sources: tuple[SourceEntry, ...] = d.sources_of(doc) if doc else ()
        self.created: EdgeWrite | None = None  # the write that creates a new record
        self.alive = doc is not None
        self.dirty = False


class AssociationChanges:
    """The associations of one batch: the stored ones read once, items applied in order."""

    def __init__(self, stored: Iterable[d.Doc]) -> None:
        self.edges: dict[str, _Edge] = {doc["_id"]: _Edge(doc) for doc in stored}
        self.created: list[str] = []  # IDs of new records in the order they were created

    def upsert(self, edge: EdgeWrite) -> Outcome:
        state = self.edges.get(edge.association_id)
        if state is None:
            state = self.edges[edge.association_id] = _Edge(None)
            self.created.append(edge.association_id)
        state.dirty = True
        if not state.alive:  # new, or deleted earlier in this batch: written from scratch
            state.alive = True
            state.names = [edge.association_type]
            state.submissions = 1
            state.file_action = edge.file_action
            state.sources = merge_sources((), edge.sources)
            if not state.stored:
                state.created = edge
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

    def writes(self, now: float) -> list[Write]:
        """The bulk write of what changed; new records get their creation order (``seq``)
        from ``now`` and the order they were created in within the batch."""
        order = {aid: position for position, aid in enumerate(self.created)}
        writes: list[Write] = []
        for aid, state in self.edges.items():
            if not state.dirty:
                continue
            if not state.alive:
                if state.stored:
                    writes.append(DeleteOne({"_id": aid}))
            elif state.stored:
                writes.append(
                    UpdateOne(
                        {"_id": aid},
                        {
                            "$set": {
                                "associationTypes": state.names,
                                "submissions": state.submissions,
                                "fileAction": state.file_action,
                                "lastSeen": now,
                                "sources": d.sources_field(state.sources),
                            }
                        },
                    )
                )
            else:
                edge = state.created
                assert edge is not None
                writes.append(
                    InsertOne(
                        d.new_association(
                            edge,
                            names=state.names,
                            submissions=state.submissions,
                            file_action=state.file_action,
                            now=now,
                            seq=d.creation_order(now, order[aid]),
                            sources=state.sources,
                        )
                    )
                )
        return writes


class EntityChanges:
    """The entities of one batch: the stored ones read once, records merged in order."""

    def __init__(self, stored: Iterable[d.Doc]) -> None:
        self.stored: dict[str, d.Doc] = {doc["_id"]: doc for doc in stored}
        self.rows: dict[str, dict[str, Any]] = {
            eid: {
                "type": doc["type"],
                "attributes": dict(doc.get("attributes") or {}),
                "reputation": doc.get("reputation"),
                "tags": list(doc.get("tags") or ()),
                "visibleBy": list(doc.get("visibleBy") or ()),
                "sources": d.sources_of(doc),
            }
            for eid, doc in self.stored.items()
        }

    def upsert(self, record: EntityRecord, sources: tuple[SourceEntry, ...] = ()) -> bool:
        """Merge ``record`` and its ``sources`` in; True when the entity is new."""
        row = self.rows.get(record.id)
        if row is None:
            self.rows[record.id] = {
                "type": record.type,
                "attributes": dict(record.attributes),
                "reputation": record.reputation,
                "tags": list(fold_tags(record.tags)),
                "visibleBy": list(dict.fromkeys(record.visible_by)),
                "sources": merge_sources((), sources),
            }
            return True
        row["attributes"] = {**row["attributes"], **record.attributes}
        if record.reputation is not None:
            row["reputation"] = record.reputation
        row["tags"] = list(fold_tags([*row["tags"], *record.tags]))
        row["visibleBy"] = list(dict.fromkeys([*row["visibleBy"], *record.visible_by]))
        if sources:
            row["sources"] = merge_sources(row["sources"], sources)
        return False

    def writes(self, now: float) -> list[Write]:
        """Every entity the batch touched, as it now is (``lastSeen`` = ``now``; new ones also
        ``createdAt``). Values go through ``docs.literal``: attributes are the submitter's, and
        a key or value starting with ``$`` must stay data."""
        writes: list[Write] = []
        for eid, row in self.rows.items():
            fields = {key: d.literal(value) for key, value in row.items()}
            fields["sources"] = d.literal(d.sources_field(row["sources"]))
            fields["lastSeen"] = d.literal(now)
            if eid not in self.stored:
                fields["createdAt"] = d.literal(now)
            writes.append(UpdateOne({"_id": eid}, [{"$set": fields}], upsert=True))
        return writes
