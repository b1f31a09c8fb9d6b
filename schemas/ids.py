"""Content-addressed IDs: entity IDs and association IDs (SPEC §1, §5).

An entity ID is ``<type>-<sha3_256 hex of the normalised main attribute>``; an association ID
is the sha3_256 hex of the two entity IDs concatenated (ThreatWinds' relation ID), so the same
entity or association always gets the same ID, whoever submits it.
"""

from __future__ import annotations

import re
from hashlib import sha3_256

from schemas.catalogue import CATALOGUE, EntityType, unknown_type_hint
from schemas.normalise import normalise

ENTITY_ID_RE = re.compile(
    "^(?:"
    + "|".join(re.escape(name) for name in sorted(CATALOGUE, key=len, reverse=True))
    + ")-[0-9a-f]{64}$"
)
"""Matches exactly the IDs ``entity_id`` can produce: a known type, '-', 64 lowercase hex."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


class InvalidEntityId(ValueError):
    """A string that is not ``<known type>-<64 lowercase hex digits>``."""

    code = "invalid_entity"


def entity_id_of_normalised(type_name: str, normalised: str) -> str:
    """The ID of an entity whose main attribute is already normalised (no checks)."""
    return f"{type_name}-{sha3_256(normalised.encode()).hexdigest()}"


def entity_id(type_name: str, value: str) -> str:
    """The ID of the ``type_name`` entity whose main attribute is ``value``.

    ``value`` is normalised first, so every spelling of the same entity gets the same ID.
    Raises ``NormalisationError`` (or ``UnknownEntityType``) like ``normalise``.
    """
    return entity_id_of_normalised(type_name, normalise(type_name, value))


def association_id(entity_id: str, related_id: str) -> str:
    """The ID of the association ``entity_id`` -> ``related_id``: sha3_256 hex of the plain
    concatenation of the two IDs (order matters)."""
    return sha3_256((entity_id + related_id).encode()).hexdigest()


def parse_entity_id(eid: str) -> EntityType:
    """The catalogue row of the type an entity ID names.

    Raises ``InvalidEntityId`` unless ``eid`` matches ``ENTITY_ID_RE``.
    """
    # The hex part is always the last 64 characters; type names themselves contain hyphens.
    if isinstance(eid, str) and len(eid) > 65 and eid[-65] == "-":
        found = CATALOGUE.get(eid[:-65])
        if found is not None and _HEX64.fullmatch(eid, len(eid) - 64):
            return found
    raise InvalidEntityId(
        f"{eid[:100]!r} is not an entity ID (<type>-<64 lowercase hex digits>){id_hint(eid)}"
        if isinstance(eid, str)
        else "an entity ID must be a string"
    )


def id_hint(eid: str) -> str:
    """What is wrong with a string that is not an entity ID, as a clause to append: an unknown
    type prefix with the nearest known types, or a hex part of the wrong shape."""
    prefix, dash, digest = eid.rpartition("-")
    if not dash or not prefix:
        return ""
    if prefix not in CATALOGUE:
        return f"; {prefix[:64]!r} is an unknown entity type{unknown_type_hint(prefix)}"
    if not _HEX64.fullmatch(digest):
        return f"; after {prefix + '-'!r} come 64 lowercase hex digits, not {len(digest)}"
    return ""
