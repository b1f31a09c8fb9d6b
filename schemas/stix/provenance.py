"""Where a STIX object's facts come from: source, confidence, TLP, first and last seen.

- ``source``: the ``name`` of the identity ``created_by_ref`` names (its ID when the identity is
  not in the bundle);
- ``confidence``: the object's ``confidence`` (0-100);
- ``tlp``: the most restrictive TLP level among ``object_marking_refs``: the predefined TLP 1.0
  and 2.0 marking definitions, or a marking definition of the bundle whose definition is a TLP
  (``definition_type: tlp``, the TLP 2.0 extension, or a ``TLP:<LEVEL>`` name);
- ``first_seen``/``last_seen``: ``first_seen``/``last_seen`` (malware, campaign, threat actor,
  intrusion set, sighting), ``first_observed``/``last_observed`` (observed-data),
  ``valid_from``/``valid_until`` (indicator), ``start_time``/``stop_time`` (relationship).

An object that names none of them inherits them from the container that holds it (the
observed-data wrapping an observable, else a report or grouping listing it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from schemas.messages import Tlp
from schemas.stix.vocabulary import SOURCES_PROPERTY, TLP2_EXTENSION, TLP_LEVELS, TLP_MARKINGS

_TIME_PAIRS = (
    ("first_seen", "last_seen"),
    ("first_observed", "last_observed"),
    ("valid_from", "valid_until"),
    ("start_time", "stop_time"),
)
_TLP_RANK = {level: rank for rank, level in enumerate(TLP_LEVELS)}
_TLP: dict[str, Tlp] = {"clear": "clear", "green": "green", "amber": "amber",
                        "amber+strict": "amber+strict", "red": "red", "white": "clear"}  # fmt: skip
MAX_SOURCE_LENGTH = 256
"""Longest source name kept (an identity's name is cut there)."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Provenance of one fact; times are RFC 3339 strings as the publisher wrote them."""

    source: str | None = None
    confidence: int | None = None
    tlp: Tlp | None = None
    first_seen: str | None = None
    last_seen: str | None = None

    def merged(self, other: Provenance) -> Provenance:
        """Both observations of the same source: the highest confidence, the earliest first
        and latest last seen, the more restrictive TLP."""
        return Provenance(
            source=self.source or other.source,
            confidence=_max(self.confidence, other.confidence),
            tlp=_stricter(self.tlp, other.tlp),
            first_seen=_earliest(self.first_seen, other.first_seen),
            last_seen=_latest(self.last_seen, other.last_seen),
        )

    def inheriting(self, container: Provenance) -> Provenance:
        """This provenance, with what it lacks taken from ``container``."""
        return replace(
            self,
            source=self.source or container.source,
            confidence=self.confidence if self.confidence is not None else container.confidence,
            tlp=self.tlp or container.tlp,
            first_seen=self.first_seen or container.first_seen,
            last_seen=self.last_seen or container.last_seen,
        )


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _stricter(a: Tlp | None, b: Tlp | None) -> Tlp | None:
    if a is None or b is None:
        return a or b
    return a if _TLP_RANK[a] >= _TLP_RANK[b] else b


def _parsed(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None


def _earliest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    pa, pb = _parsed(a), _parsed(b)
    if pa is None or pb is None:
        return a if pb is None else b
    return a if pa <= pb else b


def _latest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    pa, pb = _parsed(a), _parsed(b)
    if pa is None or pb is None:
        return a if pb is None else b
    return a if pa >= pb else b


def tlp_of_marking(marking: Mapping[str, Any]) -> Tlp | None:
    """The TLP level a marking-definition object defines, or None when it is no TLP."""
    known = _level(TLP_MARKINGS.get(str(marking.get("id"))))
    if known is not None:
        return known
    definition = marking.get("definition")
    if marking.get("definition_type") == "tlp" and isinstance(definition, dict):
        return _level(definition.get("tlp"))
    extensions = marking.get("extensions")
    if isinstance(extensions, dict) and isinstance(extensions.get(TLP2_EXTENSION), dict):
        return _level(extensions[TLP2_EXTENSION].get("tlp_2_0"))
    name = marking.get("name")
    if isinstance(name, str) and name.upper().startswith("TLP:"):
        return _level(name[4:])
    return None


def _level(value: Any) -> Tlp | None:
    return _TLP.get(value.strip().lower()) if isinstance(value, str) else None


def _confidence(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        return value
    return None


def _time(value: Any) -> str | None:
    return value if isinstance(value, str) and _parsed(value) is not None else None


def source_name(text: str) -> str | None:
    """An identity's name as a source: control characters as spaces, trimmed, cut at
    ``MAX_SOURCE_LENGTH``; None when nothing is left."""
    cleaned = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text).strip()
    return cleaned[:MAX_SOURCE_LENGTH].strip() or None


def provenance_of(
    obj: Mapping[str, Any],
    identities: Mapping[str, str],
    markings: Mapping[str, Tlp],
) -> Provenance:
    """The provenance an object states itself (see the module docstring). ``identities`` maps
    identity IDs to names, ``markings`` marking-definition IDs of the bundle to TLP levels."""
    creator = obj.get("created_by_ref")
    source = source_name(identities.get(creator, creator)) if isinstance(creator, str) else None
    tlp: Tlp | None = None
    refs = obj.get("object_marking_refs")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, str):
            tlp = _stricter(tlp, _level(TLP_MARKINGS.get(ref)) or markings.get(ref))
    pair = time_pair(obj)
    first = last = None
    if pair is not None:
        first, last = _time(obj.get(pair[0])), _time(obj.get(pair[1]))
    return Provenance(source, _confidence(obj.get("confidence")), tlp, first, last)


_PAIR_OF_TYPE = {
    "indicator": _TIME_PAIRS[2],
    "relationship": _TIME_PAIRS[3],
    "observed-data": _TIME_PAIRS[1],
}


def time_pair(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """The properties holding an object's first and last seen: by its type where the type
    says, else the first pair it has (see the module docstring)."""
    object_type = obj.get("type")
    found = _PAIR_OF_TYPE.get(object_type) if isinstance(object_type, str) else None
    if found is not None:
        return found
    for first_key, last_key in _TIME_PAIRS:
        if first_key in obj or last_key in obj:
            return first_key, last_key
    return None


def listed_provenances(obj: Mapping[str, Any]) -> list[Provenance]:
    """The sources an export of ours lists in ``x_assoc_ingest_sources`` (see
    ``vocabulary.SOURCES_PROPERTY``), as provenances; empty when it lists none."""
    listed = obj.get(SOURCES_PROPERTY)
    found: list[Provenance] = []
    for entry in listed if isinstance(listed, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        found.append(
            Provenance(
                source_name(entry["name"]),
                _confidence(entry.get("confidence")),
                _level(entry.get("tlp")),
                _time(entry.get("first_seen")),
                _time(entry.get("last_seen")),
            )
        )
    return found
