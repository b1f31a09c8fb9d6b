"""MISP events (``{"response": [{"Event": ...}]}``, ``{"Event": ...}`` or a list of either).

Objects:

- ``file`` -> one File entity: ``sha256`` (else ``sha1``, else ``md5``), the other hashes and the
  filename as attributes; a ``pe`` it ``includes`` and the ``av-signature`` it is
  ``detected-as`` add their values as attributes;
- ``domain-ip`` -> ``domain`` and ``ip`` (a name and an address in one object, or linked by
  ``resolved-to``, are Host -> Address: see below);
- ``url`` -> ``url`` (with its host, "URL Host").

References: ``file -downloaded-from-> url`` is "File Download" (URL -> File), ``file
-connected-to-> x`` is "File Traffic", ``a -dropped-by-> b`` is "File Drop" (b -> a),
``url -contains-> domain-ip`` is "URL Host". Top-level attributes of a known type (``email-src``,
``domain``, ``ip-dst``, hashes, ``mutex``, ``regkey``...) become entities without links.

A name and an address linked without a type (``domain-ip``, ``resolved-to``) are associated
when the matrix in force has exactly one type for Host -> Address (a custom one: the defaults
have none), and dropped otherwise.

Context (associations with entities of no kind): what the event is about indicates it, so every
entity of the event ``indicates`` (entity -> context) the threat actors (``adversary``) and
malware families (``malware-family``) its galaxies and ``misp-galaxy:`` tags name, and the
subject its info names as ``Name: description`` (a ``threat``); galaxies and tags of one
attribute apply to its entity alone. A file is ``detected-as`` each ``malware`` its
``av-signature`` names. Provenance: source ``misp``, the TLP of the event's tags (an
attribute's own tags win), the first/last seen of the attribute, else of its object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from assoc_ingest.importers.provenance import Seen, feed_time, tlp_of_tags
from schemas import AssociationRules
from schemas.stix.vocabulary import MISP_EVENT_ATTRIBUTE_TYPES

SOURCE = "misp"
GALAXY_TYPES = {
    **dict.fromkeys(
        ("threat-actor", "mitre-intrusion-set", "microsoft-activity-group"), "adversary"
    ),
    **dict.fromkeys(
        (
            "malpedia",
            "mitre-malware",
            "ransomware",
            "rat",
            "banker",
            "botnet",
            "stealer",
            "backdoor",
            "android",
        ),
        "malware-family",
    ),
}
"""The entity type of a cluster of each galaxy naming a threat actor or a malware family."""
_GALAXY_TAG = re.compile(r'^misp-galaxy:([^=]+)="(.+)"$')
_SUBJECT = re.compile(r"^\s*([^:]{1,64}?)\s*:\s*\S")

ATTRIBUTE_TYPES = MISP_EVENT_ATTRIBUTE_TYPES
_FILE_HASHES = ("sha256", "sha1", "md5")
_MERGED_OBJECTS = {"pe", "av-signature"}


def _named_context(galaxies: object, tags: object) -> Iterator[tuple[str, str]]:
    """``(entity type, name)`` of every threat actor and malware family named by ``galaxies``
    (MISP ``Galaxy`` objects) and ``misp-galaxy:`` ``tags``."""
    for galaxy in galaxies if isinstance(galaxies, list) else []:
        entity_type = GALAXY_TYPES.get(str(galaxy.get("type")))
        for cluster in galaxy.get("GalaxyCluster") or []:
            if entity_type and cluster.get("value"):
                yield entity_type, str(cluster["value"])
    for tag in tags if isinstance(tags, list) else []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        found = _GALAXY_TAG.match(str(name or ""))
        if found and (entity_type := GALAXY_TYPES.get(found.group(1))):
            yield entity_type, found.group(2)


def _context(
    builder: FeedBuilder, named: Iterable[tuple[str, str]], seen: Seen
) -> list[str | None]:
    return [builder.entity(entity_type, name, seen=seen) for entity_type, name in named]


def _event_context(builder: FeedBuilder, event: dict[str, Any], seen: Seen) -> list[str | None]:
    """The context of the whole event: its galaxies, its galaxy tags and its info's subject."""
    found = _context(builder, _named_context(event.get("Galaxy"), event.get("Tag")), seen)
    subject = _SUBJECT.match(str(event.get("info") or ""))
    if subject:
        attributes = {"misp_event": event.get("info"), "misp_event_uuid": event.get("uuid")}
        found.append(builder.entity("threat", subject.group(1), attributes, seen=seen))
    elif event.get("info"):
        builder.drop("MISP event info names no subject ('Name: description')")
    return found


def _seen(event_tlp: str | None, *holders: dict[str, Any]) -> Seen:
    """What MISP says of an attribute or object: its TLP tags (else the event's) and the
    widest first/last seen of the ``holders`` (an attribute, its object)."""
    seen = Seen(tlp=event_tlp)
    for holder in holders:
        seen = seen.merged(
            Seen(
                None,
                tlp_of_tags(holder.get("Tag")),
                feed_time(holder.get("first_seen")),
                feed_time(holder.get("last_seen")),
            )
        )
    return seen


def _events(document: Any) -> Iterator[dict[str, Any]]:
    if isinstance(document, list):
        for item in document:
            yield from _events(item)
    elif isinstance(document, dict):
        if "response" in document:
            yield from _events(document["response"])
        elif "Event" in document:
            yield document["Event"]


def _values(obj: dict[str, Any]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in obj.get("Attribute", []):
        relation = attribute.get("object_relation") or attribute.get("type")
        values.setdefault(str(relation), []).append(str(attribute.get("value", "")))
    return values


def _extra_attributes(
    objects: dict[str, dict[str, Any]], file_obj: dict[str, Any]
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for reference in file_obj.get("ObjectReference", []):
        target = objects.get(reference.get("referenced_uuid", ""))
        if target is None:
            continue
        values = _values(target)
        if target.get("name") == "pe" and reference.get("relationship_type") == "includes":
            for key in ("imphash", "authentihash", "compilation-timestamp", "original-filename"):
                if values.get(key):
                    extra[key] = values[key][0]
        elif target.get("name") == "av-signature":
            extra["detection"] = ", ".join(values.get("signature", []))
    return extra


def _detections(
    builder: FeedBuilder, objects: dict[str, dict[str, Any]], file_obj: dict[str, Any]
) -> Iterator[str | None]:
    """The ``malware`` entities the ``av-signature`` objects of a file name."""
    for reference in file_obj.get("ObjectReference", []):
        target = objects.get(reference.get("referenced_uuid", ""), {})
        if target.get("name") == "av-signature":
            for signature in _values(target).get("signature", []):
                yield builder.entity("malware", signature, seen=_seen(None, target))


def _object_entities(
    builder: FeedBuilder, objects: dict[str, dict[str, Any]], obj: dict[str, Any], seen: Seen
) -> list[str | None]:
    name = obj.get("name")
    values = _values(obj)
    if name == "file":
        main = next((h for h in _FILE_HASHES if values.get(h)), None)
        if main is None:
            builder.drop("MISP file object without a hash")
            return []
        attributes: dict[str, Any] = {
            h: values[h][0] for h in _FILE_HASHES if h != main and values.get(h)
        }
        if values.get("filename"):
            attributes["filename"] = values["filename"][0]
        attributes.update(_extra_attributes(objects, obj))
        file_id = builder.entity(main, values[main][0], attributes, seen=seen)
        for detection in _detections(builder, objects, obj):
            builder.associate(file_id, detection, "detected-as", seen)
        return [file_id]
    if name == "domain-ip":
        hosts = [builder.entity("domain", v, seen=seen) for v in values.get("domain", [])]
        addresses = [builder.entity("ip", v, seen=seen) for v in values.get("ip", [])]
        for host in hosts:
            for address in addresses:
                builder.link(host, address, seen)
        return hosts + addresses
    if name == "url":
        return [builder.url(v, seen=seen) for v in values.get("url", [])]
    if name not in _MERGED_OBJECTS:
        builder.drop(f"unsupported MISP object: {name}")
    return []


def _link(
    builder: FeedBuilder, relation: str, source: str | None, target: str | None, seen: Seen
) -> None:
    if relation == "downloaded-from":
        builder.associate(target, source, "File Download", seen)
    elif relation == "connected-to":
        builder.associate(source, target, "File Traffic", seen)
    elif relation == "dropped-by":
        builder.associate(target, source, "File Drop", seen)
    elif relation == "contains":
        builder.associate(source, target, "URL Host", seen)
    elif relation == "resolved-to":
        builder.link(source, target, seen)
    else:
        builder.drop(f"unsupported MISP relationship: {relation}")


def _object_seen(event_tlp: str | None, obj: dict[str, Any]) -> Seen:
    seen = _seen(event_tlp, obj)
    for attribute in obj.get("Attribute", []):
        seen = seen.merged(_seen(None, attribute))
    return seen


def _add_event(builder: FeedBuilder, event: dict[str, Any]) -> None:
    event_tlp = tlp_of_tags(event.get("Tag"))
    builder.record = {"event": event.get("uuid"), "info": event.get("info")}
    context = _event_context(builder, event, Seen(tlp=event_tlp))
    indicators: list[tuple[str | None, Seen]] = []
    for attribute in event.get("Attribute", []):
        builder.record = attribute
        type_name = ATTRIBUTE_TYPES.get(str(attribute.get("type")))
        seen = _seen(event_tlp, attribute)
        if type_name is None:
            builder.drop(f"unsupported MISP attribute type: {attribute.get('type')}")
            continue
        if type_name == "url":
            eid = builder.url(attribute.get("value"), seen=seen)
        else:
            eid = builder.entity(type_name, attribute.get("value"), seen=seen)
        own = _named_context(attribute.get("Galaxy"), attribute.get("Tag"))
        for named in _context(builder, own, seen):
            builder.associate(eid, named, "indicates", seen)
        indicators.append((eid, seen))
    objects = {str(obj.get("uuid")): obj for obj in event.get("Object", [])}
    seen_of = {uuid: _object_seen(event_tlp, obj) for uuid, obj in objects.items()}
    ids: dict[str, list[str | None]] = {}
    for uuid, obj in objects.items():
        builder.record = {"object": obj.get("name"), "uuid": uuid}
        ids[uuid] = _object_entities(builder, objects, obj, seen_of[uuid])
    indicators += [(eid, seen_of[uuid]) for uuid, found in ids.items() for eid in found]
    builder.record = {"event": event.get("uuid"), "info": event.get("info")}
    for eid, seen in indicators:
        for named in context:
            builder.associate(eid, named, "indicates", seen)
    merged: set[str] = set()
    for uuid, obj in objects.items():
        for reference in obj.get("ObjectReference", []):
            builder.record = {"object": obj.get("name"), "uuid": uuid, "reference": reference}
            relation = str(reference.get("relationship_type"))
            target_uuid = str(reference.get("referenced_uuid"))
            target_name = objects.get(target_uuid, {}).get("name")
            if relation in ("includes", "detected-as") and target_name in _MERGED_OBJECTS:
                merged.add(target_uuid)  # its values are attributes of the file
                continue
            if target_uuid not in ids:
                builder.drop("MISP reference to an unknown object")
                continue
            for source in ids[uuid]:
                for target in ids[target_uuid]:
                    _link(builder, relation, source, target, seen_of[uuid])
    for uuid, obj in objects.items():
        if obj.get("name") in _MERGED_OBJECTS and uuid not in merged:
            builder.drop(f"MISP {obj.get('name')} object not linked to a file")


EXPECTED = 'a MISP event: {"Event": ...} or {"response": [{"Event": ...}]}'


def import_misp(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """Entities, associations (of the matrix in force) and context of every event in a MISP
    JSON export."""
    builder = FeedBuilder(rules, source=SOURCE)
    with path.open(encoding="utf-8") as handle:
        document = json.load(handle)
    events = list(_events(document))
    if not events:
        raise WrongFile("it holds no MISP event")
    for event in events:
        _add_event(builder, event)
    return builder.result()
