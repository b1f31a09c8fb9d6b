"""ip2asn: 1,425 ranges of 13 ASNs become 1,579 CIDRs linked "ASN to CIDR"."""

from __future__ import annotations

from pathlib import Path

from assoc_ingest.importers import import_feed
from assoc_ingest.importers.ip2asn import AsnTable
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import assert_bodies_are_valid, count_by_type, links


def test_ranges_become_cidrs_of_their_asn(feeds_dir: Path) -> None:
    result = import_feed("ip2asn", feeds_dir / "ip2asn-v4.tsv")
    assert count_by_type(result) == {"asn": 13, "cidr": 1579}
    assert len(links(result, "ASN to CIDR")) == 1579
    assert (entity_id("asn", "13335"), entity_id("cidr", "1.1.1.0/24")) in links(
        result, "ASN to CIDR"
    )
    assert not result.dropped
    assert_bodies_are_valid(result)


def test_an_asn_keeps_its_name_and_country(feeds_dir: Path) -> None:
    result = import_feed("ip2asn", feeds_dir / "ip2asn-v4.tsv")
    (body,) = [e for e in result.entities if e["attributes"].get("asn") == "15169"]
    assert body["attributes"]["as_name"] == "GOOGLE - Google LLC"
    assert body["attributes"]["country"] == "US"


def test_a_range_not_on_a_cidr_boundary_is_covered_exactly(tmp_path: Path) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_text("203.0.113.0\t203.0.113.4\t64496\tZZ\tEXAMPLE\n", encoding="utf-8")
    result = import_feed("ip2asn", table)
    cidrs = sorted(e["attributes"]["cidr"] for e in result.entities if e["type"] == "cidr")
    assert cidrs == ["203.0.113.0/30", "203.0.113.4/32"]


def test_malformed_and_unrouted_rows_are_counted(tmp_path: Path) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_text("not\ta\trow\n1.0.0.0\t1.0.0.255\t0\tNone\tNot routed\n", encoding="utf-8")
    result = import_feed("ip2asn", table)
    assert result.entities == []
    assert result.dropped == {"malformed ip2asn row": 1, "range not routed (AS 0)": 1}


def test_the_table_finds_the_range_of_an_address(feeds_dir: Path) -> None:
    table = AsnTable(feeds_dir / "ip2asn-v4.tsv")
    found = table.lookup("1.1.1.1")
    assert found is not None
    row, network = found
    assert (row.asn, str(network)) == (13335, "1.1.1.0/24")
    assert table.lookup("192.0.2.1") is None
