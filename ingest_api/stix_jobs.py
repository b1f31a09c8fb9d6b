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
from typing import Any

import orjson

from schemas.messages import AssociationItemEncoder
from schemas.stix import Conversion

__all__ = ["encode_job"]


def encode_job(
    conversion: Conversion,
    *,
    job: str,
    user: str,
    groups: Sequence[str],
    submitted_at: float,
) -> list[bytes]:
    """The encoded items of the job ``job``: entities, then associations."""
    total = len(conversion.entities) + len(conversion.links)
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
    for index, entity in enumerate(conversion.entities):
        head["index"] = index
        head["entity"] = {
            "id": entity.id,
            "type": entity.type,
            "attributes": entity.attributes,
            "reputation": None,
            "tags": [],
            "visible_by": [],
        }
        encoded.append(dumps(head))
    encoder = AssociationItemEncoder(
        job=job, total=total, user=user, groups=groups, submitted_at=submitted_at
    )
    for index, link in enumerate(conversion.links, start=len(conversion.entities)):
        encoded.append(
            encoder.encode(index, link.entity_id, link.related_id, link.association_type)
        )
    return encoded
