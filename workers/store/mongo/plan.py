"""What one batch does to the entities and associations it touches, decided in memory.

``apply_batch`` reads every record a batch touches (one query per collection, inside the
batch's transaction), hands them to ``EntityChanges`` and ``AssociationChanges``, applies the
items in batch order, and writes back what changed with one bulk write per collection. The
rules are those of the embedded store, item by item:

- associations: ``workers.store.edges`` (both stores apply them); every record a batch
  changes gets ``lastSeen``;
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
from workers.store.edges import BatchEdges
from workers.store.mongo import docs as d
from workers.store.records import EntityRecord, SourceEntry
from workers.store.sources import merge_sources

Write = InsertOne[d.Doc] | UpdateOne | DeleteOne


class AssociationChanges(BatchEdges[str]):
    """The associations of one batch: the stored ones read once, items applied in order (the
    rules are ``BatchEdges``')."""

    def __init__(self, stored: Iterable[d.Doc]) -> None:
        super().__init__()
        for doc in stored:
            self.load(
                doc["_id"],
                list(doc.get("associationTypes") or ()),
                int(doc.get("submissions", 0)),
                bool(doc.get("fileAction")),
                d.sources_of(doc),
                doc["_id"],
            )

    def writes(self, now: float) -> list[Write]:
        """The bulk write of what changed; new records get their creation order (``seq``)
        from ``now`` and the order they were created in within the batch."""
        order = {aid: position for position, aid in enumerate(self.created())}
        writes: list[Write] = []
        for aid, state in self.changed():
            if not state.alive:
                if state.stored is not None:
                    writes.append(DeleteOne({"_id": aid}))
            elif state.stored is not None:
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
                edge = state.first
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
