"""What can be saved from a message that does not decode as a whole (pure, no I/O).

A message carries the items of many jobs; one item that does not validate must not send the
others to the dead-letter queue with it (SPEC §4: a failing item fails alone). When the
envelope itself is sound (a JSON object of the current version, a known kind, a list of
items), each item is validated on its own: the valid ones make a message that is handled as
usual, each invalid one is set aside with its reason and, where its job and index can be read,
its ``ItemMeta`` (so that its job can record it failed). An envelope that is not sound cannot
be split: the caller dead-letters the whole message, as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.messages import (
    SCHEMA_VERSION,
    AssociationItem,
    AssociationMessage,
    EntityItem,
    EntityMessage,
    ItemMeta,
    MessageKind,
)

__all__ = ["Salvaged", "UnreadableItem", "salvage_message", "validation_reason"]


@dataclass(frozen=True, slots=True)
class UnreadableItem:
    """An item that does not validate: its JSON, why, and its origin when readable."""

    encoded: bytes
    reason: str
    meta: ItemMeta | None


@dataclass(slots=True)
class Salvaged:
    """The valid items of a message (None when there are none) and the others."""

    message: AssociationMessage | EntityMessage | None
    unreadable: list[UnreadableItem] = field(default_factory=list)


def validation_reason(exc: Exception) -> str:
    """``undecodable: <where>: <what>`` from a validation error (at most 500 characters)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.error_count() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return f"undecodable: {detail}"[:500]
    return f"undecodable: {exc}"[:500]


def salvage_message(body: bytes) -> Salvaged | None:
    """The message's valid items and its unreadable ones; None when the envelope is not sound."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict) or envelope.get("v") != SCHEMA_VERSION:
        return None
    try:
        kind = MessageKind(str(envelope.get("kind")))
    except ValueError:
        return None
    raw_items = envelope.get("items")
    if not isinstance(raw_items, list) or set(envelope) != {"v", "kind", "items"}:
        return None
    model: type[AssociationItem] | type[EntityItem] = (
        EntityItem if kind is MessageKind.ENTITY else AssociationItem
    )
    valid: list[Any] = []
    salvaged = Salvaged(message=None)
    for raw in raw_items:
        encoded = json.dumps(raw).encode()
        try:
            valid.append(model.model_validate_json(encoded))
        except ValidationError as exc:
            salvaged.unreadable.append(
                UnreadableItem(encoded, validation_reason(exc), _meta_of(raw))
            )
    if valid:
        fields = {"kind": kind, "items": tuple(valid)}
        salvaged.message = (
            EntityMessage.model_validate(fields)
            if kind is MessageKind.ENTITY
            else AssociationMessage.model_validate(fields)
        )
    return salvaged


def _meta_of(raw: Any) -> ItemMeta | None:
    if not isinstance(raw, dict):
        return None
    fields = {name: raw[name] for name in ItemMeta.model_fields if name in raw}
    try:
        return ItemMeta.model_validate_json(json.dumps(fields))
    except ValidationError:
        return None
