"""Feodo Tracker: C2 addresses with their PTR names and ASNs (JSON), and the CSV blocklist."""

from __future__ import annotations

from pathlib import Path

from assoc_ingest.importers import import_feed
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import (
    assert_bodies_are_valid,
    count_by_association_type,
    count_by_type,
    links,
)


def test_five_addresses_three_ptr_names_and_their_asns(feeds_dir: Path) -> None:
    result = import_feed("feodo", feeds_dir / "feodo.json")
    assert count_by_type(result) == {"ip": 5, "hostname": 3, "asn": 3}
    assert count_by_association_type(result) == {"ASN to Address": 5, "DNS PTR Record": 3}
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
    assert count_by_type(result) == {"ip": 28}
    assert result.associations == []
    assert not result.dropped
    (body,) = [e for e in result.entities if e["attributes"]["ip"] == "192.9.135.73"]
    assert body["attributes"]["port"] == 1194
    assert body["attributes"]["status"] == "online"
    assert body["tags"] == ["Pikabot"]
    assert_bodies_are_valid(result)
