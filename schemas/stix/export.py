"""Entities and associations of our store -> a STIX 2.1 bundle that ``convert_bundle`` reads
back to the same entities and associations.

- An entity becomes the STIX object of its kind: an observable (``ipv4-addr``, ``domain-name``,
  ``file`` with its hash, ...) with the deterministic ID STIX 2.1 §2.9 prescribes (UUIDv5 in the
  STIX namespace over the ID-contributing properties), or a domain object (``malware``,
  ``threat-actor``, ``campaign``, ``vulnerability``, ``tool``, ``intrusion-set``); a type STIX
  has no object for becomes an ``x-assoc-ingest-entity`` custom object. Where the STIX type
  alone does not name our type (a ``hostname`` is a ``domain-name``) the object says it in
  ``x_assoc_ingest_type``; attributes beyond the main value travel in
  ``x_assoc_ingest_attributes``.
- An association becomes one ``relationship`` per association type (per source, when it has
  several), named by the type in lower case with hyphens (``asn-to-address``), which the import
  maps back to that type.
- Provenance: a source becomes an ``identity`` (``created_by_ref``), its confidence the
  ``confidence``, its TLP a TLP 2.0 marking definition (``object_marking_refs``), its first and
  last seen ``start_time``/``stop_time`` of a relationship or ``first_seen``/``last_seen`` of a
  domain object; an observable's provenance is stated by an ``observed-data`` per source.

Domain objects, relationships and identities get UUIDv5 IDs in our own namespace, from what
they describe, so the same stored state always exports the same bundle.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from schemas.catalogue import CATALOGUE, DataType
from schemas.stix.vocabulary import (
    ATTRIBUTES_PROPERTY,
    ENTITY_TYPE_PROPERTY,
    GENERIC_OBJECT_TYPE,
    OUR_NAMESPACE,
    SOURCES_PROPERTY,
    STIX_HASH_NAME,
    STIX_NAMESPACE,
    TLP2_EXTENSION,
    TLP2_MARKING_IDS,
    slug,
)

_STIX_NS: Final = uuid.UUID(STIX_NAMESPACE)
_OUR_NS: Final = uuid.UUID(OUR_NAMESPACE)
_TLP2_CREATED: Final = "2022-10-01T00:00:00.000Z"

_OBSERVABLE_OF_TYPE: Final = {
    "domain": ("domain-name", "value"),
    "url": ("url", "value"),
    "email-address": ("email-addr", "value"),
    "mutex": ("mutex", "name"),
    "regkey": ("windows-registry-key", "key"),
    "mac-address": ("mac-addr", "value"),
    "path": ("directory", "path"),
    "username": ("user-account", "account_login"),
    "filename": ("file", "name"),
    "email-subject": ("email-message", "subject"),
}
"""Entity type -> (observable type, property of the main value); ``ip``, ``cidr``, ``asn``
and hashes are written by code (their value changes shape)."""

_OBSERVABLE_OF_DATA_TYPE: Final = {
    DataType.FQDN: ("domain-name", "value"),
    DataType.URL: ("url", "value"),
    DataType.EMAIL: ("email-addr", "value"),
}
"""Data type -> observable, for the other types of a data type (``hostname``, ``link``, ...);
they say their own type in ``x_assoc_ingest_type``."""

_DOMAIN_OBJECT_OF_TYPE: Final = {
    "malware": "malware",
    "malware-family": "malware",
    "adversary": "threat-actor",
    "group": "intrusion-set",
    "campaign": "campaign",
    "cve": "vulnerability",
    "tool": "tool",
}


@dataclass(frozen=True, slots=True)
class Source:
    """One source's view of an entity or association (SPEC §5 ``sources``); ``name`` is None
    for the submitting user alone."""

    name: str | None = None
    confidence: int | None = None
    tlp: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass(frozen=True, slots=True)
class ExportEntity:
    id: str
    type: str
    attributes: Mapping[str, Any]
    created_at: float
    last_seen: float
    sources: Sequence[Source] = ()


@dataclass(frozen=True, slots=True)
class ExportAssociation:
    id: str
    entity_id: str
    related_id: str
    association_types: Sequence[str]
    created_at: float
    last_seen: float
    sources: Sequence[Source] = ()


def _canonical(value: Any) -> str:
    """RFC 8785 canonical JSON of strings, whole numbers, lists and objects."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sco_id(object_type: str, contributing: Mapping[str, Any]) -> str:
    return f"{object_type}--{uuid.uuid5(_STIX_NS, _canonical(contributing))}"


def _our_id(object_type: str, *parts: str) -> str:
    return f"{object_type}--{uuid.uuid5(_OUR_NS, chr(31).join(parts))}"


def timestamp(seconds: float) -> str:
    """An RFC 3339 UTC timestamp as STIX writes them: milliseconds, or microseconds when the
    time has them (so that stored times survive an export)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    fraction = f"{moment.microsecond:06d}"
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + (fraction[:3] if fraction.endswith("000") else fraction)
        + "Z"
    )


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _Objects:
    """The objects of the bundle being written, unique by ID, in the order first added."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    stix_ids: dict[str, str] = field(default_factory=dict)

    def add(self, obj: dict[str, Any]) -> str:
        self.by_id.setdefault(obj["id"], obj)
        return str(obj["id"])

    def identity(self, name: str) -> str:
        return self.add(
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": _our_id("identity", "identity", name),
                "created": _TLP2_CREATED,
                "modified": _TLP2_CREATED,
                "name": name,
            }
        )

    def marking(self, level: str) -> str:
        marking_id = TLP2_MARKING_IDS[level]
        return self.add(
            {
                "type": "marking-definition",
                "spec_version": "2.1",
                "id": marking_id,
                "created": _TLP2_CREATED,
                "name": f"TLP:{level.upper()}",
                "extensions": {
                    TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}
                },
            }
        )

    def provenance(self, source: Source, first: str, last: str) -> dict[str, Any]:
        """Common properties stating ``source``; ``first``/``last`` name the time properties."""
        stated: dict[str, Any] = {}
        if source.name:
            stated["created_by_ref"] = self.identity(source.name)
        if source.confidence is not None:
            stated["confidence"] = source.confidence
        if source.tlp is not None and source.tlp in TLP2_MARKING_IDS:
            stated["object_marking_refs"] = [self.marking(source.tlp)]
        if source.first_seen:
            stated[first] = source.first_seen
        if source.last_seen and (first != "start_time" or source.last_seen != source.first_seen):
            stated[last] = source.last_seen  # a relationship's stop_time must follow its start
        return stated


def _source_json(source: Source) -> dict[str, Any]:
    return {
        name: value
        for name, value in (
            ("name", source.name),
            ("confidence", source.confidence),
            ("tlp", source.tlp),
            ("first_seen", source.first_seen),
            ("last_seen", source.last_seen),
        )
        if value is not None
    }


def _extra_attributes(entity: ExportEntity, *also: str) -> dict[str, Any]:
    return {
        name: value
        for name, value in entity.attributes.items()
        if name != entity.type and name not in also and value is not None
    }


def _observable(entity: ExportEntity, value: str) -> dict[str, Any] | None:
    """The observable an entity is, with its deterministic ID; None when STIX has none."""
    type_name = entity.type
    row = CATALOGUE.get(type_name)
    named = False
    main: Any
    if type_name in ("ip", "cidr"):
        version = ipaddress.ip_network(value, strict=False).version
        object_type, prop, main = f"ipv{version}-addr", "value", value
    elif type_name == "asn":
        object_type, prop, main = "autonomous-system", "number", int(value)
    elif type_name in STIX_HASH_NAME:
        object_type, prop, main = "file", "hashes", {STIX_HASH_NAME[type_name]: value}
    elif type_name in _OBSERVABLE_OF_TYPE:
        (object_type, prop), main = _OBSERVABLE_OF_TYPE[type_name], value
    elif row is not None and row.data_type in _OBSERVABLE_OF_DATA_TYPE:
        (object_type, prop), main = _OBSERVABLE_OF_DATA_TYPE[row.data_type], value
        named = True
    else:
        return None
    obj: dict[str, Any] = {
        "type": object_type,
        "spec_version": "2.1",
        "id": _sco_id(object_type, {prop: main}),
        prop: main,
    }
    if object_type == "email-message":
        obj["is_multipart"] = False
    if named:
        obj[ENTITY_TYPE_PROPERTY] = type_name
    return obj


def _domain_object(entity: ExportEntity, value: str) -> dict[str, Any] | None:
    object_type = _DOMAIN_OBJECT_OF_TYPE.get(entity.type)
    if object_type is None:
        return None
    name = entity.attributes.get("name")
    name = name if isinstance(name, str) and name.strip() else value
    obj: dict[str, Any] = {
        "type": object_type,
        "spec_version": "2.1",
        "id": _our_id(object_type, entity.id),
        "created": timestamp(entity.created_at),
        "modified": timestamp(max(entity.last_seen, entity.created_at)),
        "name": name,
    }
    if object_type == "malware":
        obj["is_family"] = entity.type == "malware-family"
    if object_type == "vulnerability" and value.startswith("cve-"):
        obj["external_references"] = [{"source_name": "cve", "external_id": value.upper()}]
    aliases = entity.attributes.get("aliases")
    if object_type in ("threat-actor", "intrusion-set", "campaign", "tool") and (
        isinstance(aliases, list) and aliases
    ):
        obj["aliases"] = [str(alias) for alias in aliases]
    return obj


def _entity_object(entity: ExportEntity, objects: _Objects) -> str:
    value = str(entity.attributes.get(entity.type, ""))
    observable = _observable(entity, value)
    if observable is not None and observable["id"] not in objects.by_id:
        return _observable_object(entity, observable, objects)
    # An observable's ID derives from its value alone: a second entity of the same value
    # (a hostname beside the domain of that name) becomes a custom object instead.
    domain = _domain_object(entity, value)
    if domain is not None:
        extra = _extra_attributes(entity, "name", "aliases")
    else:
        domain = {
            "type": GENERIC_OBJECT_TYPE,
            "spec_version": "2.1",
            "id": _our_id(GENERIC_OBJECT_TYPE, entity.id),
            "created": timestamp(entity.created_at),
            "modified": timestamp(max(entity.last_seen, entity.created_at)),
            ENTITY_TYPE_PROPERTY: entity.type,
            "value": value,
        }
        extra = _extra_attributes(entity)
    if extra:
        domain[ATTRIBUTES_PROPERTY] = extra
    named = [source for source in entity.sources if source.name]
    if named:
        domain.update(objects.provenance(named[0], "first_seen", "last_seen"))
        if domain["type"] not in ("malware", "threat-actor", "intrusion-set", "campaign"):
            domain.pop("first_seen", None)
            domain.pop("last_seen", None)
        domain[SOURCES_PROPERTY] = [_source_json(source) for source in named]
    return objects.add(domain)


def _observable_object(entity: ExportEntity, observable: dict[str, Any], objects: _Objects) -> str:
    """Add an observable and, per source, an observed-data stating its provenance."""
    extra = _extra_attributes(entity)
    if extra:
        observable[ATTRIBUTES_PROPERTY] = extra
    sco_id = objects.add(observable)
    for source in entity.sources:
        stated = objects.provenance(source, "first_observed", "last_observed")
        if not source.name and not stated:
            continue
        observed: dict[str, Any] = {
            "type": "observed-data",
            "spec_version": "2.1",
            "id": _our_id("observed-data", entity.id, source.name or ""),
            "created": timestamp(entity.created_at),
            "modified": timestamp(max(entity.last_seen, entity.created_at)),
            "first_observed": timestamp(entity.created_at),
            "last_observed": timestamp(max(entity.last_seen, entity.created_at)),
            "number_observed": 1,
            "object_refs": [sco_id],
        }
        observed.update(stated)
        if _moment(observed["last_observed"]) < _moment(observed["first_observed"]):
            observed["last_observed"] = observed["first_observed"]
        objects.add(observed)
    return sco_id


def export_bundle(
    entities: Sequence[ExportEntity], associations: Sequence[ExportAssociation]
) -> dict[str, Any]:
    """A STIX 2.1 bundle of ``entities`` and the ``associations`` between them (an association
    whose end is not among ``entities`` is left out). The bundle's ID derives from the first
    entity's, so the same state exports the same bundle."""
    objects = _Objects()
    stix_ids = {entity.id: _entity_object(entity, objects) for entity in entities}
    for association in associations:
        source_ref = stix_ids.get(association.entity_id)
        target_ref = stix_ids.get(association.related_id)
        if source_ref is None or target_ref is None:
            continue
        sources = list(association.sources) or [Source()]
        for type_name in association.association_types:
            for source in sources:
                relationship: dict[str, Any] = {
                    "type": "relationship",
                    "spec_version": "2.1",
                    "id": _our_id("relationship", association.id, type_name, source.name or ""),
                    "created": timestamp(association.created_at),
                    "modified": timestamp(max(association.last_seen, association.created_at)),
                    "relationship_type": slug(type_name),
                    "source_ref": source_ref,
                    "target_ref": target_ref,
                }
                relationship.update(objects.provenance(source, "start_time", "stop_time"))
                objects.add(relationship)
    first = entities[0].id if entities else ""
    return {
        "type": "bundle",
        "id": _our_id("bundle", "bundle", first),
        "objects": list(objects.by_id.values()),
    }
