"""What every feed importer shares: the result it returns and the builder that fills it.

An importer reads one feed file and describes it as ingest API bodies: entity bodies for
``POST /api/ingest/v1/entities`` and association bodies for ``POST /api/ingest/v1/associations``.
Every value goes through ``schemas.normalise``/``schemas.entity_id``, every association is checked
against the association matrix in force (the defaults plus the custom types the caller passes; a
context entity at either end takes a free relationship name), and whatever cannot be expressed
is counted by reason in ``ImportResult.dropped`` and listed, with the source record it came
from, in ``ImportResult.rejects``: nothing is lost without a trace. A file that is not of the
feed is ``WrongFile``, saying what was expected. A builder made for a feed (``source``) puts the
feed's name and what it says of each record (``Seen``) on every body it makes.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from assoc_ingest.importers.provenance import Seen, feed_time
from schemas import (
    AssociationRules,
    NormalisationError,
    Rejection,
    entity_id,
    entity_id_of_normalised,
    normalise,
    parse_entity_id,
)

EntityBody = dict[str, Any]
AssociationBody = dict[str, Any]
_AssociationKey = tuple[str, str, str]
_PROVENANCE_FIELDS = ("source", "confidence", "tlp", "firstSeen", "lastSeen")


class WrongFile(ValueError):
    """The file is not of the feed asked for; the message says what was expected."""


@dataclass
class ImportResult:
    """Entities, associations and what was dropped from one imported feed file.

    ``entities`` are unique by entity ID and ``associations`` by
    ``(entityID, relatedEntityID, associationType)``, in first-seen order; each body carries the
    provenance its feed gives (``source``, ``confidence``, ``tlp``, ``firstSeen``,
    ``lastSeen``). ``dropped`` maps a reason (``"invalid ip: a private address (RFC 1918)"``,
    ``"pair not allowed by the matrix: Host->Address"``, ...) to the number of values or links
    dropped for it; ``rejects`` has one entry per drop: the reason, what was dropped (type and
    value, or the two entity IDs) and the source record it came from.
    """

    entities: list[EntityBody] = field(default_factory=list)
    associations: list[AssociationBody] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    rejects: list[dict[str, Any]] = field(default_factory=list)


def host_type(host: str) -> str:
    """``ip`` for a literal IP address, ``domain`` for a name."""
    try:
        ip_address(host)
    except ValueError:
        return "domain"
    return "ip"


def not_allowed_reason(primary_id: str, related_id: str) -> str:
    """The ``dropped`` reason of a link whose kinds no association type allows."""
    primary = parse_entity_id(primary_id).kind
    related = parse_entity_id(related_id).kind
    return f"pair not allowed by the matrix: {primary}->{related}"


def _seen_of(body: Mapping[str, Any]) -> tuple[str | None, Seen] | None:
    """The source and provenance written on a body, None when it has none."""
    if not any(field in body for field in _PROVENANCE_FIELDS):
        return None
    seen = Seen(
        body.get("confidence"),
        body.get("tlp"),
        feed_time(body.get("firstSeen")),
        feed_time(body.get("lastSeen")),
    )
    return body.get("source"), seen


class FeedBuilder:
    """Collects normalised entities and checked associations into an ``ImportResult``.

    ``rules``: the association matrix in force (defaults only when None). ``source`` is the
    feed's name, written on every body it makes with the ``seen`` given for it (``seen``, when
    none is). A value already reported by another source keeps that source's provenance.
    ``record``: the source record being read, which an importer sets so that what is dropped
    names where it came from.
    """

    def __init__(
        self,
        rules: AssociationRules | None = None,
        *,
        source: str | None = None,
        seen: Seen | None = None,
    ) -> None:
        self._rules = rules if rules is not None else AssociationRules()
        self.source = source
        self.seen = seen
        self._entities: dict[str, EntityBody] = {}
        self._associations: dict[_AssociationKey, AssociationBody] = {}
        self._seen: dict[str | _AssociationKey, tuple[str | None, Seen]] = {}
        self.dropped: Counter[str] = Counter()
        self.rejects: list[dict[str, Any]] = []
        self.record: Any = None

    @classmethod
    def from_result(
        cls,
        result: ImportResult,
        rules: AssociationRules | None = None,
        *,
        source: str | None = None,
    ) -> FeedBuilder:
        """A builder holding ``result``'s entities, associations, provenance and counts, to add
        more as ``source``."""
        builder = cls(rules, source=source)
        for body in result.entities:
            type_name = body["type"]
            eid = entity_id(type_name, body["attributes"][type_name])
            builder._entities[eid] = {
                "type": type_name,
                "attributes": copy.deepcopy(body["attributes"]),
                "tags": list(body.get("tags", [])),
            }
            if (seen := _seen_of(body)) is not None:
                builder._seen[eid] = seen
        for association in result.associations:
            key = (
                association["entityID"],
                association["relatedEntityID"],
                association["associationType"],
            )
            builder._associations[key] = {
                field: association[field]
                for field in ("entityID", "relatedEntityID", "associationType")
            }
            if (seen := _seen_of(association)) is not None:
                builder._seen[key] = seen
        builder.dropped.update(result.dropped)
        builder.rejects.extend(result.rejects)
        return builder

    def _note(self, key: str | _AssociationKey, seen: Seen | None) -> None:
        """Record that this builder's source reported ``key`` (as ``seen`` says)."""
        seen = seen if seen is not None else self.seen
        if self.source is None and seen is None:
            return
        seen = seen if seen is not None else Seen()
        known = self._seen.get(key)
        if known is None:
            self._seen[key] = (self.source, seen)
        elif known[0] == self.source:
            self._seen[key] = (self.source, known[1].merged(seen))

    def _with_provenance(self, key: str | _AssociationKey, body: dict[str, Any]) -> dict[str, Any]:
        known = self._seen.get(key)
        return body if known is None else {**body, **known[1].fields(known[0])}

    def drop(self, reason: str, *, count: int = 1, **what: Any) -> None:
        """Count ``count`` values or links dropped for ``reason``, and list the drop with
        ``what`` was dropped and the current source ``record``."""
        self.dropped[reason] += count
        self.rejects.append({"reason": reason, **what, "record": self.record})

    def entity(
        self,
        type_name: str,
        value: object,
        attributes: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        seen: Seen | None = None,
    ) -> str | None:
        """Add (or merge into) the entity ``type_name``/``value``, as ``seen``; return its ID.

        A value that fails normalisation is counted in ``dropped`` as ``invalid <type>: <reason>``
        and gives ``None``. Extra ``attributes`` of a repeated entity are merged: list values
        are united, otherwise the first value of a key wins; tags are united in first-seen order;
        what the feed says of it is merged (``Seen.merged``).
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            self.drop(f"invalid {type_name}: empty value", type=type_name, value=value)
            return None
        text = str(value)
        try:
            normalised = normalise(type_name, text)
        except NormalisationError as err:
            self.drop(f"invalid {type_name}: {err.reason}", type=type_name, value=text)
            return None
        eid = entity_id_of_normalised(type_name, normalised)
        body = self._entities.get(eid)
        if body is None:
            body = {"type": type_name, "attributes": {type_name: normalised}, "tags": []}
            self._entities[eid] = body
        attrs: dict[str, Any] = body["attributes"]
        for key, extra in (attributes or {}).items():
            if extra is None or extra == "":
                continue
            if key not in attrs:
                attrs[key] = list(extra) if isinstance(extra, list) else extra
            elif isinstance(attrs[key], list) and isinstance(extra, list):
                attrs[key].extend(item for item in extra if item not in attrs[key])
        known: list[str] = body["tags"]
        for tag in tags:
            tag = tag.strip()
            if tag and tag not in known:
                known.append(tag)
        self._note(eid, seen)
        return eid

    def url(
        self,
        value: object,
        attributes: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        seen: Seen | None = None,
    ) -> str | None:
        """Add a ``url`` entity and its host (``domain`` or ``ip``) linked by "URL Host"."""
        uid = self.entity("url", value, attributes, tags, seen)
        if uid is None:
            return None
        host = urlsplit(self._entities[uid]["attributes"]["url"]).hostname
        if host:
            self.associate(uid, self.entity(host_type(host), host, seen=seen), "URL Host", seen)
        return uid

    def associate(
        self,
        primary_id: str | None,
        related_id: str | None,
        type_name: str,
        seen: Seen | None = None,
    ) -> bool:
        """Add the association ``primary_id -> related_id`` of the named type (a free
        relationship name when either end is a context entity), as ``seen``; tell if it fits.

        A missing end (``None``, already counted when its value was dropped) adds nothing. A pair
        the matrix does not allow under ``type_name`` is dropped.
        """
        if primary_id is None or related_id is None:
            return False
        link: dict[str, Any] = {
            "entityID": primary_id,
            "relatedEntityID": related_id,
            "associationType": type_name,
        }
        if primary_id == related_id:
            self.drop(f"self association: {type_name}", **link)
            return False
        matched = self._rules.match(primary_id, related_id, type_name)
        if isinstance(matched, Rejection):
            self.drop(not_allowed_reason(primary_id, related_id), **link)
            return False
        key = (primary_id, related_id, matched.name)
        if key not in self._associations:
            self._associations[key] = {
                "entityID": primary_id,
                "relatedEntityID": related_id,
                "associationType": matched.name,
            }
        self._note(key, seen)
        return True

    @staticmethod
    def id_of(type_name: str, value: object) -> str | None:
        """The ID ``value`` would have as a ``type_name`` entity, without adding it (or None)."""
        try:
            return entity_id(type_name, str(value))
        except NormalisationError:
            return None

    def link(
        self, primary_id: str | None, related_id: str | None, seen: Seen | None = None
    ) -> bool:
        """Add a link the source states without a type (``primary_id -> related_id``) if exactly
        one association type of the matrix in force carries it, custom types included (a
        "Host -> Address" link needs an administrator's custom type); else drop it."""
        if primary_id is None or related_id is None:
            return False
        matched = self._rules.match(primary_id, related_id)
        if isinstance(matched, Rejection):
            reason = (
                f"pair fits several types: {', '.join(matched.candidates)}"
                if matched.candidates
                else not_allowed_reason(primary_id, related_id)
            )
            self.drop(reason, entityID=primary_id, relatedEntityID=related_id)
            return False
        return self.associate(primary_id, related_id, matched.name, seen)

    def values_of(self, type_name: str) -> list[tuple[str, str]]:
        """``(entity ID, normalised main attribute)`` of every entity of ``type_name`` so far."""
        return [
            (eid, body["attributes"][type_name])
            for eid, body in self._entities.items()
            if body["type"] == type_name
        ]

    def result(self) -> ImportResult:
        """The collected entities, associations and dropped counts."""
        return ImportResult(
            entities=[self._with_provenance(eid, body) for eid, body in self._entities.items()],
            associations=[
                self._with_provenance(key, body) for key, body in self._associations.items()
            ],
            dropped=Counter(self.dropped),
            rejects=list(self.rejects),
        )
