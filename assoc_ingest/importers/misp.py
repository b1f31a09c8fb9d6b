"""MISP events (``{"response": [{"Event": ...}]}``, ``{"Event": ...}`` or a list of either).

Objects:

- ``file`` -> one File entity: ``sha256`` (else ``sha1``, else ``md5``), the other hashes and the
  filename as attributes; a ``pe`` it ``includes`` and the ``av-signature`` it is
  ``detected-as`` add their values as attributes;
- ``domain-ip`` -> ``domain`` and ``ip`` (a name and an address in one object, or linked by
  ``resolved-to``, are Host -> Address: not in the default matrix, counted as dropped);
- ``url`` -> ``url`` (with its host, "URL Host").

References: ``file -downloaded-from-> url`` is "File Download" (URL -> File), ``file
-connected-to-> x`` is "File Traffic", ``a -dropped-by-> b`` is "File Drop" (b -> a),
``url -contains-> domain-ip`` is "URL Host". Top-level attributes of a known type (``email-src``,
``domain``, ``ip-dst``, hashes, ``mutex``, ``regkey``...) become entities without links.

A name and an address linked without a type (``domain-ip``, ``resolved-to``) are associated
when the matrix in force has exactly one type for Host -> Address (a custom one: the defaults
have none), and dropped otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from schemas import AssociationRules

ATTRIBUTE_TYPES = {
    "email": "email-address",
    "email-src": "email-address",
    "email-dst": "email-address",
    "domain": "domain",
    "hostname": "hostname",
    "ip-src": "ip",
    "ip-dst": "ip",
    "url": "url",
    "link": "link",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha512": "sha512",
    "mutex": "mutex",
    "regkey": "regkey",
    "user-agent": "user-agent",
    "AS": "asn",
}
_FILE_HASHES = ("sha256", "sha1", "md5")
_MERGED_OBJECTS = {"pe", "av-signature"}


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


def _object_entities(
    builder: FeedBuilder, objects: dict[str, dict[str, Any]], obj: dict[str, Any]
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
        return [builder.entity(main, values[main][0], attributes)]
    if name == "domain-ip":
        hosts = [builder.entity("domain", v) for v in values.get("domain", [])]
        addresses = [builder.entity("ip", v) for v in values.get("ip", [])]
        for host in hosts:
            for address in addresses:
                builder.link(host, address)
        return hosts + addresses
    if name == "url":
        return [builder.url(v) for v in values.get("url", [])]
    if name not in _MERGED_OBJECTS:
        builder.drop(f"unsupported MISP object: {name}")
    return []


def _link(builder: FeedBuilder, relation: str, source: str | None, target: str | None) -> None:
    if relation == "downloaded-from":
        builder.associate(target, source, "File Download")
    elif relation == "connected-to":
        builder.associate(source, target, "File Traffic")
    elif relation == "dropped-by":
        builder.associate(target, source, "File Drop")
    elif relation == "contains":
        builder.associate(source, target, "URL Host")
    elif relation == "resolved-to":
        builder.link(source, target)
    else:
        builder.drop(f"unsupported MISP relationship: {relation}")


def _add_event(builder: FeedBuilder, event: dict[str, Any]) -> None:
    for attribute in event.get("Attribute", []):
        builder.source = attribute
        type_name = ATTRIBUTE_TYPES.get(str(attribute.get("type")))
        if type_name is None:
            builder.drop(f"unsupported MISP attribute type: {attribute.get('type')}")
        elif type_name == "url":
            builder.url(attribute.get("value"))
        else:
            builder.entity(type_name, attribute.get("value"))
    objects = {str(obj.get("uuid")): obj for obj in event.get("Object", [])}
    ids: dict[str, list[str | None]] = {}
    for uuid, obj in objects.items():
        builder.source = {"object": obj.get("name"), "uuid": uuid}
        ids[uuid] = _object_entities(builder, objects, obj)
    merged: set[str] = set()
    for uuid, obj in objects.items():
        for reference in obj.get("ObjectReference", []):
            builder.source = {"object": obj.get("name"), "uuid": uuid, "reference": reference}
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
                    _link(builder, relation, source, target)
    for uuid, obj in objects.items():
        if obj.get("name") in _MERGED_OBJECTS and uuid not in merged:
            builder.drop(f"MISP {obj.get('name')} object not linked to a file")


EXPECTED = 'a MISP event: {"Event": ...} or {"response": [{"Event": ...}]}'


def import_misp(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """Entities and associations of every event in a MISP JSON export."""
    builder = FeedBuilder(rules)
    with path.open(encoding="utf-8") as handle:
        document = json.load(handle)
    events = list(_events(document))
    if not events:
        raise WrongFile("it holds no MISP event")
    for event in events:
        _add_event(builder, event)
    return builder.result()
