"""A converted STIX bundle -> the items of one job, encoded for the queue.

The entities come first (indexes ``0..E-1``), then the associations: one entity message
carries them all (``schemas.messages.EntityMessage``), so the bundle is queued or refused
whole, and the workers decide the associations with the bundle's entities counted as written.
Entity items are encoded with orjson from the same fields as ``EntityItem`` (the tests check
that the workers decode them to the models the conversion describes), association items with
the association template encoder; this is the per-object cost of ``POST /stix``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.messages import AssociationItemEncoder, Provenance
from schemas.stix import Conversion
from schemas.stix import Provenance as StixProvenance

__all__ = ["encode_job", "envelope_provenance", "item_count"]


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def envelope_provenance(given: StixProvenance) -> Provenance | None:
    """The queue envelope's provenance of a STIX fact (times as seconds since the epoch);
    None when it states nothing."""
    first, last = _epoch(given.first_seen), _epoch(given.last_seen)
    if first is not None and last is not None and first > last:
        first, last = last, first
    if (
        given.source is None
        and given.confidence is None
        and given.tlp is None
        and (first is None and last is None)
    ):
        return None
    return Provenance.model_construct(
        source=given.source,
        confidence=given.confidence,
        tlp=given.tlp,
        first_seen=first,
        last_seen=last,
    )


def encode_job(
    conversion: Conversion,
    *,
    job: str,
    user: str,
    groups: Sequence[str],
    submitted_at: float,
) -> list[bytes]:
    """The encoded items of the job ``job``: entities, then associations, one item per
    source that stated each (the store keeps one entry per source)."""
    converted: dict[StixProvenance, tuple[Provenance | None, dict[str, Any] | None]] = {}

    def provenance(given: StixProvenance) -> tuple[Provenance | None, dict[str, Any] | None]:
        found = converted.get(given)
        if found is None:
            model = envelope_provenance(given)
            found = converted[given] = (model, None if model is None else model.model_dump())
        return found

    entities = [(e, provenance(p)[1]) for e in conversion.entities for p in e.provenance.values()]
    links = [
        (link, provenance(p)[0]) for link in conversion.links for p in link.provenance.values()
    ]
    total = len(entities) + len(links)
    head: dict[str, Any] = {
        "job": job,
        "total": total,
        "user": user,
        "groups": list(groups),
        "submitted_at": float(submitted_at),
        "children": [],
        "links": [],
    }
    encoded: list[bytes] = []
    dumps = orjson.dumps
    for index, (entity, stated) in enumerate(entities):
        head["index"] = index
        head["entity"] = {
            "id": entity.id,
            "type": entity.type,
            "attributes": entity.attributes,
            "reputation": None,
            "tags": [],
            "visible_by": [],
            "provenance": stated,
        }
        encoded.append(dumps(head))
    encoder = AssociationItemEncoder(
        job=job, total=total, user=user, groups=groups, submitted_at=submitted_at
    )
    for index, (link, model) in enumerate(links, start=len(entities)):
        encoded.append(
            encoder.encode(index, link.entity_id, link.related_id, link.association_type, model)
        )
    return encoded


def item_count(conversion: Conversion) -> int:
    """How many items ``encode_job`` makes of ``conversion``."""
    return sum(len(e.provenance) for e in conversion.entities) + sum(
        len(link.provenance) for link in conversion.links
    )
