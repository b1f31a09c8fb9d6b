"""ThreatFox "recent IOCs" JSON export (abuse.ch).

The file is an object keyed by IOC id; each value is a list of IOC records. Mapping:

- ``ip:port`` -> ``ip``, every port seen kept in its ``ports`` attribute; ``AS<n>`` tags ->
  ``asn``, "ASN to Address";
- ``domain`` -> ``domain``;
- ``url`` -> ``url`` plus its host (``domain`` or ``ip``), "URL Host";
- ``md5_hash`` / ``sha1_hash`` / ``sha256_hash`` -> ``md5`` / ``sha1`` / ``sha256``.

Each IOC is linked to its malware family (``malware_printable`` as a ``malware-family``
entity, the Malpedia ID and aliases as its attributes; ThreatFox's own "Unknown malware" label
included): a context association named after the threat type (``RELATIONSHIPS``), IOC ->
family. Every body carries the record's provenance: source ``threatfox``, its
``confidence_level``, ``first_seen_utc`` and ``last_seen_utc``. Malware, threat type,
confidence, first-seen time and reporter also become attributes of the IOC; the record's tags
(minus the ``AS<n>`` ones) and the malware name become tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from assoc_ingest.importers.provenance import Seen, feed_time
from schemas import AssociationRules

SOURCE = "threatfox"
HASH_TYPES = {"md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256"}
RELATIONSHIPS = {"botnet_cc": "c2-of", "payload_delivery": "delivers", "payload": "sample-of"}
"""The relationship of an IOC to its malware family by ThreatFox threat type; others are
``indicates``."""
_ASN_TAG = re.compile(r"AS(\d+)", re.IGNORECASE)


def _records(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and "data" in document:  # the API's {"data": [...]} shape
        document = document["data"]
    values = document.values() if isinstance(document, dict) else document
    records: list[dict[str, Any]] = []
    for value in values:
        records.extend(value if isinstance(value, list) else [value])
    return records


def _add_record(builder: FeedBuilder, record: dict[str, Any]) -> None:
    ioc_type = str(record.get("ioc_type") or "")
    value = str(record.get("ioc_value") or "")
    raw_tags = [tag.strip() for tag in str(record.get("tags") or "").split(",") if tag.strip()]
    asns = [m.group(1) for tag in raw_tags if (m := _ASN_TAG.fullmatch(tag))]
    tags = [tag for tag in raw_tags if not _ASN_TAG.fullmatch(tag)]
    malware = record.get("malware_printable")
    if malware:
        tags.append(str(malware))
    confidence = record.get("confidence_level")
    seen = Seen(
        confidence if isinstance(confidence, int) and 0 <= confidence <= 100 else None,
        None,
        feed_time(record.get("first_seen_utc")),
        feed_time(record.get("last_seen_utc")),
    )
    reporter = record.get("reporter")
    attributes = {
        "malware": malware,
        "threat_type": record.get("threat_type"),
        "confidence_level": confidence,
        "first_seen": record.get("first_seen_utc"),
        "reporters": [str(reporter)] if reporter else None,
    }
    if ioc_type == "ip:port":
        address, _, port = value.rpartition(":")
        address = address.strip("[]")
        if port.isdigit():
            attributes["ports"] = [int(port)]
        eid = builder.entity("ip", address or value, attributes, tags, seen)
    elif ioc_type == "domain":
        eid = builder.entity("domain", value, attributes, tags, seen)
    elif ioc_type == "url":
        eid = builder.url(value, attributes, tags, seen)
    elif ioc_type in HASH_TYPES:
        eid = builder.entity(HASH_TYPES[ioc_type], value, attributes, tags, seen)
    else:
        builder.drop(f"unsupported ThreatFox IOC type: {ioc_type}")
        return
    for asn in asns:
        asn_id = builder.entity("asn", asn, seen=seen)
        if eid is not None and asn_id is not None:
            builder.associate(asn_id, eid, "ASN to Address", seen)
    if malware:
        family = builder.entity(
            "malware-family",
            malware,
            {"malpedia": record.get("malware"), "aliases": _aliases(record)},
            seen=seen,
        )
        relationship = RELATIONSHIPS.get(str(record.get("threat_type")), "indicates")
        builder.associate(eid, family, relationship, seen)


def _aliases(record: dict[str, Any]) -> list[str] | None:
    aliases = [a.strip() for a in str(record.get("malware_alias") or "").split(",") if a.strip()]
    return aliases or None


EXPECTED = "ThreatFox's JSON export: an object of IOC id -> [{ioc_value, ioc_type, ...}]"


def import_threatfox(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """Entities of every IOC in a ThreatFox JSON export, with URL hosts, tagged ASNs and
    malware families."""
    builder = FeedBuilder(rules, source=SOURCE)
    document = orjson.loads(path.read_bytes())
    if not isinstance(document, dict | list):
        raise WrongFile("it is not a JSON object")
    records = _records(document)
    if not all(isinstance(r, dict) and "ioc_type" in r for r in records):
        raise WrongFile("its records have no ioc_type")
    for record in records:
        builder.record = record
        _add_record(builder, record)
    return builder.result()
