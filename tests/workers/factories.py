"""Factories of queue messages for worker tests: real envelopes, built as the front builds them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from schemas import entity_id
from schemas.jobids import new_job_id
from schemas.messages import (
    AssociationItem,
    EntityItem,
    EntityLink,
    EntityRecord,
    ItemMeta,
    MessageKind,
    Provenance,
    encode_envelope,
    encode_item,
)

ASN = ("asn", "15169")
FAMILY = ("malware-family", "qakbot")
ADDRESS = ("ip", "203.0.113.5")
ADDRESS_2 = ("ip", "198.51.100.7")
HOST = ("domain", "www.example.com")
FILE = ("md5", "d41d8cd98f00b204e9800998ecf8427e")
URL = ("url", "https://www.example.com/a")


def eid(entity: tuple[str, str]) -> str:
    return entity_id(*entity)


def association(
    entity: tuple[str, str] | str,
    related: tuple[str, str] | str,
    association_type: str | None = None,
    *,
    job: str | None = None,
    index: int = 0,
    total: int = 1,
    user: str = "alice",
    groups: tuple[str, ...] = ("analysts",),
    submitted_at: float | None = None,
    provenance: Provenance | None = None,
) -> AssociationItem:
    return AssociationItem(
        job=job or new_job_id(),
        index=index,
        total=total,
        user=user,
        groups=groups,
        submitted_at=time.time() if submitted_at is None else submitted_at,
        entity_id=entity if isinstance(entity, str) else eid(entity),
        related_id=related if isinstance(related, str) else eid(related),
        association_type=association_type,
        provenance=provenance,
    )


def record(entity: tuple[str, str]) -> EntityRecord:
    type_name, value = entity
    return EntityRecord(id=eid(entity), type=type_name, attributes={type_name: value})


def entity(
    main: tuple[str, str],
    children: Sequence[tuple[str, str]] = (),
    links: Sequence[tuple[tuple[str, str], tuple[str, str], str]] = (),
    *,
    job: str | None = None,
    index: int = 0,
    total: int = 1,
    user: str = "alice",
    submitted_at: float | None = None,
    parts_from: int | None = None,
) -> EntityItem:
    return EntityItem(
        job=job or new_job_id(),
        index=index,
        total=total,
        user=user,
        groups=("analysts",),
        submitted_at=time.time() if submitted_at is None else submitted_at,
        entity=record(main),
        children=tuple(record(child) for child in children),
        links=tuple(
            EntityLink(entity_id=eid(a), related_id=eid(b), association_type=name)
            for a, b, name in links
        ),
        parts_from=parts_from,
    )


def envelope(kind: MessageKind, items: Sequence[ItemMeta]) -> bytes:
    return encode_envelope(kind, [encode_item(item) for item in items])


def associations(*items: AssociationItem) -> bytes:
    return envelope(MessageKind.ASSOCIATION, items)


def deletes(*items: AssociationItem) -> bytes:
    return envelope(MessageKind.ASSOCIATION_DELETE, items)


def entities(*items: EntityItem | AssociationItem) -> bytes:
    """An entity message; association items may travel in it too (a STIX bundle's job)."""
    return envelope(MessageKind.ENTITY, items)


def poison_entity(main: tuple[str, str], *, job: str | None = None) -> EntityItem:
    """An entity item that decodes but that no store can write: an attribute beyond 64 bits
    (the embedded store's JSON encoder and BSON both refuse it), so its handler fails."""
    item = entity(main, job=job)
    record = item.entity.model_copy(update={"attributes": {**item.entity.attributes, "n": 2**70}})
    return item.model_copy(update={"entity": record})
