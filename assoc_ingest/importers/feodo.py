"""Feodo Tracker botnet C2 blocklists (abuse.ch), in their JSON and CSV forms.

JSON (``ipblocklist.json``): ``ip_address`` -> ``ip``; ``hostname`` (reverse DNS) -> ``hostname``,
"DNS PTR Record"; ``as_number``/``as_name`` -> ``asn``, "ASN to Address"; ``port``, ``status``,
``malware`` and the dates -> attributes, ``malware`` also a tag.

CSV (``ipblocklist.csv``): a ``#`` banner, a quoted header row, quoted rows and a ``# END`` line;
``dst_ip`` -> ``ip`` with port, status and malware as attributes. It has no ASN nor hostname.

In both, the address is linked to its malware family (a ``malware-family`` entity) by the
context association ``c2-of`` (address -> family), and every body carries the record's
provenance: source ``feodo`` (both files are Feodo Tracker's blocklist), confidence
``CONFIDENCE``, first seen and last online (a date: read as that day's start, and never
before the first sighting).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from assoc_ingest.importers.common import FeedBuilder, ImportResult, WrongFile
from assoc_ingest.importers.provenance import Seen, feed_time
from schemas import AssociationRules

EXPECTED = "Feodo Tracker's JSON blocklist: an array of {ip_address, port, hostname, ...}"
EXPECTED_CSV = "Feodo Tracker's CSV blocklist: '#' comment lines, then a header row with dst_ip"

SOURCE = "feodo"
CONFIDENCE = 75
"""Feodo Tracker gives no confidence; 75 is what abuse.ch gives most of its own automated C2
reports in ThreatFox (the ``abuse_ch`` reporter of the ThreatFox sample)."""
RELATIONSHIP = "c2-of"


def _seen(first: object, last: object) -> Seen:
    return Seen(CONFIDENCE, None, feed_time(first), feed_time(last))


def _family(builder: FeedBuilder, ip_id: str | None, malware: object, seen: Seen) -> None:
    if not malware:
        return  # no family stated: nothing to link
    builder.associate(
        ip_id, builder.entity("malware-family", malware, seen=seen), RELATIONSHIP, seen
    )


def import_feodo(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """C2 addresses of a Feodo Tracker JSON blocklist with their PTR names, ASNs and malware
    families."""
    builder = FeedBuilder(rules, source=SOURCE)
    with path.open(encoding="utf-8") as handle:
        records: list[dict[str, Any]] = json.load(handle)
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and "ip_address" in r for r in records
    ):
        raise WrongFile("it is not an array of records with ip_address")
    for record in records:
        builder.record = record
        malware = record.get("malware")
        seen = _seen(record.get("first_seen"), record.get("last_online"))
        ip_id = builder.entity(
            "ip",
            record.get("ip_address"),
            {
                "port": record.get("port"),
                "status": record.get("status"),
                "malware": malware,
                "country": record.get("country"),
                "first_seen": record.get("first_seen"),
                "last_online": record.get("last_online"),
            },
            [str(malware)] if malware else [],
            seen,
        )
        if record.get("hostname"):
            host_id = builder.entity("hostname", record["hostname"], seen=seen)
            builder.associate(ip_id, host_id, "DNS PTR Record", seen)
        if record.get("as_number") is not None:
            asn_id = builder.entity(
                "asn", record["as_number"], {"as_name": record.get("as_name")}, seen=seen
            )
            builder.associate(asn_id, ip_id, "ASN to Address", seen)
        _family(builder, ip_id, malware, seen)
    return builder.result()


def import_ipblocklist(path: Path, rules: AssociationRules | None = None) -> ImportResult:
    """C2 addresses of a Feodo Tracker CSV blocklist, with port, status and malware family."""
    builder = FeedBuilder(rules, source=SOURCE)
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [line for line in handle if line.strip() and not line.startswith("#")]
    rows = csv.DictReader(lines)
    if lines and "dst_ip" not in (rows.fieldnames or []):
        raise WrongFile("it has no header row with dst_ip")
    for row in rows:
        builder.record = row
        malware = row.get("malware")
        port = row.get("dst_port") or ""
        seen = _seen(row.get("first_seen_utc"), row.get("last_online"))
        ip_id = builder.entity(
            "ip",
            row.get("dst_ip"),
            {
                "port": int(port) if port.isdigit() else None,
                "status": row.get("c2_status"),
                "malware": malware,
                "first_seen": row.get("first_seen_utc"),
                "last_online": row.get("last_online"),
            },
            [malware] if malware else [],
            seen,
        )
        _family(builder, ip_id, malware, seen)
    return builder.result()
