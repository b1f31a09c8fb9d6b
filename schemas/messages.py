"""The queue message envelope: what the front publishes and the workers consume.

One AMQP message carries the items of many jobs from many users: the publisher packs concurrent
requests of the same kind together. Each item therefore carries its own job ID, its index in that
job, the job's item count, the submitting user and groups and the submission time.

Wire format (JSON, UTF-8)::

    {"v": 1, "kind": "association", "items": [{...}, {...}]}

``encode_envelope`` joins already-encoded items without re-encoding them, so the publisher can
bound a message by bytes cheaply.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

SCHEMA_VERSION: Final = 1


class MessageKind(StrEnum):
    ASSOCIATION = "association"
    ASSOCIATION_DELETE = "association_delete"
    ENTITY = "entity"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TLP_MARKINGS: Final = ("clear", "green", "amber", "amber+strict", "red")
"""The Traffic Light Protocol 2.0 markings a write may carry."""

Tlp = Literal["clear", "green", "amber", "amber+strict", "red"]


class Provenance(_Frozen):
    """Where a submitted association or entity comes from, as the front checked it.

    ``source`` names the reporting feed or organisation (the submitting user is always known
    from the item); ``confidence`` is 0-100; ``first_seen``/``last_seen`` are the times that
    source observed it (seconds since the epoch; they may predate ingestion).
    """

    source: str | None = None
    confidence: int | None = Field(default=None, ge=0, le=100)
    tlp: Tlp | None = None
    first_seen: float | None = None
    last_seen: float | None = None


class ItemMeta(_Frozen):
    """Where an item comes from; the same fields on every kind of item."""

    job: str = Field(description="job ID (UUIDv7) the item belongs to")
    index: int = Field(ge=0, description="position of the item in its job")
    total: int = Field(ge=1, description="number of items in the job")
    user: str = Field(description="submitting user")
    groups: tuple[str, ...] = Field(default=(), description="submitting user's groups")
    submitted_at: float = Field(description="submission time, seconds since the epoch")


class AssociationItem(ItemMeta):
    """Create (kind ``association``) or remove (kind ``association_delete``) one association."""

    entity_id: str
    related_id: str
    association_type: str | None = None
    provenance: Provenance | None = None


class EntityRecord(_Frozen):
    """An entity as stored: the ID is computed by the front from the normalised main attribute.

    ``provenance`` is the entity's own, or the one its parent passed down to it."""

    id: str
    type: str
    attributes: dict[str, Any]
    reputation: int | None = None
    tags: tuple[str, ...] = ()
    visible_by: tuple[str, ...] = ()
    provenance: Provenance | None = None


class EntityLink(_Frozen):
    """An association implied by nesting, already oriented primary -> non-primary, with the
    provenance of the child that implies it."""

    entity_id: str
    related_id: str
    association_type: str
    provenance: Provenance | None = None


class EntityItem(ItemMeta):
    """One submitted entity with its nested children (flattened) and the links they imply.

    ``parts_from``: the index in the job of the first child; the other children, then the
    links, take the indexes that follow, so that the job counts an outcome for every entity
    and link it carries. None: only the entity itself has an outcome.
    """

    entity: EntityRecord
    children: tuple[EntityRecord, ...] = ()
    links: tuple[EntityLink, ...] = ()
    parts_from: int | None = Field(default=None, ge=0)

    @property
    def parts(self) -> int:
        """How many job indexes the children and links take (from ``parts_from``)."""
        return len(self.children) + len(self.links)


class AssociationMessage(_Frozen):
    v: Literal[1] = SCHEMA_VERSION
    kind: Literal[MessageKind.ASSOCIATION, MessageKind.ASSOCIATION_DELETE]
    items: tuple[AssociationItem, ...]


def _item_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "entity" if "entity" in value else "association"
    return "entity" if isinstance(value, EntityItem) else "association"


EntityMessageItem = Annotated[
    Annotated[EntityItem, Tag("entity")] | Annotated[AssociationItem, Tag("association")],
    Discriminator(_item_kind),
]


class EntityMessage(_Frozen):
    """Entity items, and possibly association items between them and others: a job that
    carries both (a STIX bundle) travels in one message, so it is queued or refused whole.
    The association items are decided as in an association message, the entities written by
    the same message counting as existing."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal[MessageKind.ENTITY]
    items: tuple[EntityMessageItem, ...]


JobMessage = Annotated[AssociationMessage | EntityMessage, Field(discriminator="kind")]
_JOB_MESSAGE: TypeAdapter[AssociationMessage | EntityMessage] = TypeAdapter(JobMessage)


def encode_item(item: ItemMeta) -> bytes:
    """One item as the JSON bytes the envelope carries."""
    return item.model_dump_json(exclude_defaults=False).encode()


@functools.lru_cache(maxsize=1024)
def _caller_json(user: str, groups: tuple[str, ...]) -> str:
    """The ``user`` and ``groups`` members of an item: the same for every job of a caller."""
    return f'"user":{json.dumps(user)},"groups":{json.dumps(list(groups))}'


class AssociationItemEncoder:
    """Encodes the association items of one job, fast: what ``encode_item`` gives for an
    ``AssociationItem`` with the same fields, built from a template instead of a model.

    The entity IDs must already be checked (``schemas.parse_entity_id``: lowercase letters,
    digits and hyphens only), so they need no escaping; every other text is JSON-escaped.
    A provenance is encoded by its model, once per distinct value in the job.
    """

    def __init__(
        self, *, job: str, total: int, user: str, groups: Sequence[str], submitted_at: float
    ) -> None:
        self._head = (
            f'{{"job":{json.dumps(job)},"index":'.encode(),
            (
                f',"total":{total},{_caller_json(user, tuple(groups))}'
                f',"submitted_at":{float(submitted_at)!r},"entity_id":"'
            ).encode(),
        )
        self._types: dict[str | None, bytes] = {}
        self._plain_tails: dict[str | None, bytes] = {}
        self._provenances: dict[tuple[object, ...], bytes] = {}

    def encode(
        self,
        index: int,
        entity_id: str,
        related_id: str,
        association_type: str | None,
        provenance: Provenance | None = None,
    ) -> bytes:
        first, second = self._head
        return b'%s%d%s%s","related_id":"%s%s' % (
            first,
            index,
            second,
            entity_id.encode(),
            related_id.encode(),
            self._tail(association_type, provenance),
        )

    def encode_many(
        self, items: Sequence[tuple[int, str, str, str | None, Provenance | None]]
    ) -> list[bytes]:
        """``encode`` of each ``(index, entity_id, related_id, association_type,
        provenance)``, in order: a bulk's items share their tails, found once."""
        first, second = self._head
        tails: dict[tuple[str | None, int], bytes] = {}
        encoded = []
        for index, entity_id, related_id, association_type, provenance in items:
            # Keyed by identity: ``items`` holds the provenances alive, and equal ones found
            # under two identities still encode alike.
            tail = tails.get((association_type, id(provenance)))
            if tail is None:
                tail = self._tail(association_type, provenance)
                tails[association_type, id(provenance)] = tail
            encoded.append(
                b'%s%d%s%s","related_id":"%s%s'
                % (first, index, second, entity_id.encode(), related_id.encode(), tail)
            )
        return encoded

    def _tail(self, association_type: str | None, provenance: Provenance | None) -> bytes:
        """The end of an item after its related ID: type, provenance and the closing brace."""
        if provenance is None:
            found = self._plain_tails.get(association_type)
            if found is None:
                found = self._type_part(association_type) + b"null}"
                self._plain_tails[association_type] = found
            return found
        # Keyed by the values: hashing a tuple is cheaper than hashing the model.
        key = (
            provenance.source,
            provenance.confidence,
            provenance.tlp,
            provenance.first_seen,
            provenance.last_seen,
        )
        found = self._provenances.get(key)
        if found is None:
            found = self._provenances[key] = provenance.model_dump_json().encode()
        return self._type_part(association_type) + found + b"}"

    def _type_part(self, association_type: str | None) -> bytes:
        tail = self._types.get(association_type)
        if tail is None:
            tail = f'","association_type":{json.dumps(association_type)},"provenance":'.encode()
            self._types[association_type] = tail
        return tail


def encode_envelope(kind: MessageKind, encoded_items: Sequence[bytes]) -> bytes:
    """An envelope around items already encoded with ``encode_item``."""
    head = b'{"v":%d,"kind":"%s","items":[' % (SCHEMA_VERSION, kind.value.encode())
    return head + b",".join(encoded_items) + b"]}"


def decode_message(body: bytes) -> AssociationMessage | EntityMessage:
    """Parse and validate a message body; raises ``pydantic.ValidationError`` when it is not one."""
    return _JOB_MESSAGE.validate_json(body)
