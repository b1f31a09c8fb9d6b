"""The builder every importer shares: normalised, unique, checked, and nothing lost uncounted."""

from __future__ import annotations

from pathlib import Path

import pytest

from assoc_ingest.importers import import_feed
from assoc_ingest.importers.common import FeedBuilder
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import assert_bodies_are_valid, links


def test_a_value_that_fails_normalisation_is_counted_with_its_reason() -> None:
    builder = FeedBuilder()
    assert builder.entity("ip", "10.1.2.3") is None
    assert builder.entity("ip", "not an address") is None
    assert builder.entity("domain", "") is None
    result = builder.result()
    assert result.entities == []
    assert result.dropped == {
        "invalid ip: a private address (RFC 1918)": 1,
        "invalid ip: not an IPv4 or IPv6 address": 1,
        "invalid domain: empty value": 1,
    }


def test_an_entity_seen_twice_is_one_body_with_merged_attributes_and_tags() -> None:
    builder = FeedBuilder()
    first = builder.entity("domain", "WWW.Example.COM", {"malware": "A"}, ["one"])
    second = builder.entity("domain", "www.example.com.", {"malware": "B", "port": 80}, ["two"])
    assert first == second == entity_id("domain", "www.example.com")
    assert builder.result().entities == [
        {
            "type": "domain",
            "attributes": {"domain": "www.example.com", "malware": "A", "port": 80},
            "tags": ["one", "two"],
        }
    ]


def test_a_pair_the_default_matrix_does_not_allow_is_counted_by_its_kinds() -> None:
    builder = FeedBuilder()
    host = builder.entity("domain", "example.com")
    address = builder.entity("ip", "203.0.113.7")
    assert builder.associate(host, address, "URL Host") is False
    assert builder.associate(address, address, "DNS PTR Record") is False
    result = builder.result()
    assert result.associations == []
    assert result.dropped == {
        "pair not allowed by the matrix: Host->Address": 1,
        "self association: DNS PTR Record": 1,
    }


def test_the_same_association_twice_is_kept_once() -> None:
    builder = FeedBuilder()
    address = builder.entity("ip", "203.0.113.7")
    host = builder.entity("hostname", "host.example.com")
    assert builder.associate(address, host, "DNS PTR Record")
    assert builder.associate(address, host, "dns ptr record")
    result = builder.result()
    assert result.associations == [
        {"entityID": address, "relatedEntityID": host, "associationType": "DNS PTR Record"}
    ]
    assert_bodies_are_valid(result)


def test_a_url_brings_its_host_or_address_linked_by_url_host() -> None:
    builder = FeedBuilder()
    by_name = builder.url("HTTP://Evil.Example.com/a?b=1")
    by_address = builder.url("http://203.0.113.9:8080/x")
    result = builder.result()
    assert links(result, "URL Host") == {
        (by_name, entity_id("domain", "evil.example.com")),
        (by_address, entity_id("ip", "203.0.113.9")),
    }
    assert_bodies_are_valid(result)


def test_an_unknown_feed_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown feed 'nope'"):
        import_feed("nope", tmp_path / "feed.json")


def test_an_asn_table_links_feed_addresses_to_their_cidr_and_asn(feeds_dir: Path) -> None:
    result = import_feed(
        "threatfox", feeds_dir / "threatfox.json", asn_table=feeds_dir / "ip2asn-v4.tsv"
    )
    # 34.123.214.16 lies in the row 34.120.0.0 - 34.123.255.255 of AS19527 (GOOGLE-2)
    address = entity_id("ip", "34.123.214.16")
    cidr = entity_id("cidr", "34.120.0.0/14")
    google = entity_id("asn", "19527")
    assert (cidr, address) in links(result, "CIDR to Address")
    assert (google, address) in links(result, "ASN to Address")
    assert (google, cidr) in links(result, "ASN to CIDR")
    # the README counts 9 ThreatFox C2 addresses inside the table's ranges
    assert len(links(result, "CIDR to Address")) == 9
    assert_bodies_are_valid(result)
