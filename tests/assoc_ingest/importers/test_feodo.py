"""Feodo Tracker: C2 addresses with their PTR names and ASNs (JSON), and the CSV blocklist."""

from __future__ import annotations

import json
from pathlib import Path

from assoc_ingest.importers import import_feed
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import (
    assert_bodies_are_valid,
    context_links,
    count_by_association_type,
    count_by_type,
    links,
)


def test_five_addresses_three_ptr_names_and_their_asns(feeds_dir: Path) -> None:
    result = import_feed("feodo", feeds_dir / "feodo.json")
    assert count_by_type(result) == {"ip": 5, "hostname": 3, "asn": 3, "malware-family": 2}
    assert count_by_association_type(result) == {
        "ASN to Address": 5,
        "DNS PTR Record": 3,
        "c2-of": 5,
    }
    assert not result.dropped
    assert_bodies_are_valid(result)


def test_an_address_is_linked_to_its_ptr_name_and_its_asn(feeds_dir: Path) -> None:
    result = import_feed("feodo", feeds_dir / "feodo.json")
    address = entity_id("ip", "50.16.16.211")
    ptr = entity_id("hostname", "ec2-50-16-16-211.compute-1.amazonaws.com")
    assert (address, ptr) in links(result, "DNS PTR Record")
    assert (entity_id("asn", "14618"), address) in links(result, "ASN to Address")
    (body,) = [e for e in result.entities if e["attributes"].get("ip") == "50.16.16.211"]
    assert body["attributes"]["port"] == 443
    assert body["tags"] == ["QakBot"]


def test_the_csv_blocklist_gives_28_addresses_with_ports(feeds_dir: Path) -> None:
    result = import_feed("ipblocklist", feeds_dir / "ipblocklist.csv")
    assert count_by_type(result) == {"ip": 28, "malware-family": 1}
    assert count_by_association_type(result) == {"c2-of": 28}
    assert not result.dropped
    (body,) = [e for e in result.entities if e["attributes"].get("ip") == "192.9.135.73"]
    assert body["attributes"]["port"] == 1194
    assert body["attributes"]["status"] == "online"
    assert body["tags"] == ["Pikabot"]
    assert_bodies_are_valid(result)


def test_every_address_is_a_c2_of_its_malware_family_with_the_feeds_times(
    feeds_dir: Path,
) -> None:
    records = json.loads((feeds_dir / "feodo.json").read_text(encoding="utf-8"))
    result = import_feed("feodo", feeds_dir / "feodo.json")
    by_pair = {(a["entityID"], a["relatedEntityID"]): a for a in context_links(result)}
    for record in records:
        link = by_pair[
            (entity_id("ip", record["ip_address"]), entity_id("malware-family", record["malware"]))
        ]
        assert link["associationType"] == "c2-of"
        assert (link["source"], link["confidence"]) == ("feodo", 75)
        assert link["firstSeen"] == record["first_seen"].replace(" ", "T") + "Z"
        assert link["lastSeen"] == record["last_online"] + "T00:00:00Z"
    assert len(by_pair) == len(records) == 5


def test_the_address_body_carries_the_same_provenance(feeds_dir: Path) -> None:
    result = import_feed("feodo", feeds_dir / "feodo.json")
    (body,) = [e for e in result.entities if e["attributes"].get("ip") == "162.243.103.246"]
    assert {k: body[k] for k in ("source", "confidence", "firstSeen", "lastSeen")} == {
        "source": "feodo",
        "confidence": 75,
        "firstSeen": "2022-06-04T21:24:53Z",
        "lastSeen": "2026-03-07T00:00:00Z",
    }


def test_the_csv_addresses_are_c2s_of_pikabot_as_feodo_saw_them(feeds_dir: Path) -> None:
    result = import_feed("ipblocklist", feeds_dir / "ipblocklist.csv")
    pikabot = entity_id("malware-family", "Pikabot")
    link = next(
        a for a in context_links(result) if a["entityID"] == entity_id("ip", "192.9.135.73")
    )
    assert (link["relatedEntityID"], link["source"]) == (pikabot, "feodo")
    assert (link["firstSeen"], link["lastSeen"]) == ("2023-05-23T17:51:44Z", "2024-04-01T00:00:00Z")
