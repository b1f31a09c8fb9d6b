"""ThreatFox: every IOC becomes an entity or a counted drop; URLs bring hosts, AS tags ASNs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assoc_ingest.importers import ImportResult, import_feed
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import (
    assert_bodies_are_valid,
    context_links,
    count_by_association_type,
    count_by_type,
    ids_of,
    links,
)


@pytest.fixture(scope="module")
def records(feeds_dir: Path) -> list[dict[str, Any]]:
    document = json.loads((feeds_dir / "threatfox.json").read_text(encoding="utf-8"))
    return [record for value in document.values() for record in value]


@pytest.fixture(scope="module")
def result(feeds_dir: Path) -> ImportResult:
    return import_feed("threatfox", feeds_dir / "threatfox.json")


def test_the_sample_holds_the_iocs_the_readme_counts(records: list[dict[str, Any]]) -> None:
    assert Counter(record["ioc_type"] for record in records) == {
        "ip:port": 2412,
        "domain": 1207,
        "url": 408,
        "sha256_hash": 169,
        "sha1_hash": 146,
        "md5_hash": 146,
    }


def test_every_ioc_is_an_entity_or_a_counted_drop(
    result: ImportResult, records: list[dict[str, Any]]
) -> None:
    kinds = {"ip:port": "ip", "domain": "domain", "url": "url"}
    kinds |= {"md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256"}
    ids = ids_of(result)
    missing = 0
    for record in records:
        type_name = kinds[record["ioc_type"]]
        value = record["ioc_value"]
        if type_name == "ip":
            value = value.rpartition(":")[0]
        try:
            eid = entity_id(type_name, value)
        except ValueError:
            missing += 1
            continue
        assert eid in ids, record
    invalid = sum(count for reason, count in result.dropped.items() if reason.startswith("invalid"))
    assert missing == invalid == 1  # 100.64.0.0/10 (carrier-grade NAT) is not public


def test_hashes_are_file_entities_one_per_distinct_value(result: ImportResult) -> None:
    counts = count_by_type(result)
    assert (counts["md5"], counts["sha1"], counts["sha256"]) == (146, 146, 169)


def test_each_url_is_linked_to_its_host_or_address(result: ImportResult) -> None:
    assert count_by_type(result)["url"] == 408
    assert count_by_association_type(result)["URL Host"] == 408
    url = entity_id("url", "http://59.180.156.235:42443/Mozi.m")
    assert (url, entity_id("ip", "59.180.156.235")) in links(result, "URL Host")
    url = entity_id("url", "https://sup.merahsm188.top/")
    assert (url, entity_id("domain", "sup.merahsm188.top")) in links(result, "URL Host")


def test_as_tags_give_asn_to_address_and_are_dropped_on_hosts(result: ImportResult) -> None:
    address = entity_id("ip", "185.242.3.83")
    assert (entity_id("asn", "60223"), address) in links(result, "ASN to Address")
    assert count_by_type(result)["asn"] == 91  # the README's 91 ASNs
    assert result.dropped["pair not allowed by the matrix: ASN->Host"] == 3


def test_an_address_keeps_every_port_its_malware_and_tags(result: ImportResult) -> None:
    (body,) = [e for e in result.entities if e["attributes"].get("ip") == "185.242.3.83"]
    assert sorted(body["attributes"]["ports"]) == [2202, 9909]
    assert body["attributes"]["malware"] == "AsyncRAT"
    assert "AS60223" not in body["tags"]
    assert {"AsyncRAT", "C2", "RAT"} <= set(body["tags"])


def test_every_body_is_valid_and_allowed(result: ImportResult) -> None:
    assert_bodies_are_valid(result)


def test_every_iocs_malware_family_is_a_context_association_with_the_feeds_view(
    result: ImportResult, records: list[dict[str, Any]]
) -> None:
    kinds = {"ip:port": "ip", "domain": "domain", "url": "url"}
    kinds |= {"md5_hash": "md5", "sha1_hash": "sha1", "sha256_hash": "sha256"}
    names = {"botnet_cc": "c2-of", "payload_delivery": "delivers", "payload": "sample-of"}
    by_link = {
        (a["entityID"], a["relatedEntityID"], a["associationType"]): a
        for a in context_links(result)
    }
    kept = 0
    for record in records:
        value = record["ioc_value"]
        if record["ioc_type"] == "ip:port":
            value = value.rpartition(":")[0]
        try:
            ioc = entity_id(kinds[record["ioc_type"]], value)
        except ValueError:
            continue  # the one address that is not public (see above)
        family = entity_id("malware-family", record["malware_printable"])
        link = by_link[(ioc, family, names.get(record["threat_type"], "indicates"))]
        assert link["source"] == "threatfox"
        assert link["confidence"] >= record["confidence_level"]
        assert link["firstSeen"] <= record["first_seen_utc"].replace(" ", "T") + "Z"
        kept += 1
    assert kept == 4487
    assert len(by_link) == 3842  # IOCs repeated with another port or threat type merge
    assert count_by_type(result)["malware-family"] == 92  # the README's 94 families, by name


def test_a_family_keeps_its_malpedia_id_and_aliases(result: ImportResult) -> None:
    (body,) = [
        e for e in result.entities if e["attributes"].get("malware-family") == "cobalt strike"
    ]
    assert body["attributes"]["malpedia"] == "win.cobalt_strike"
    assert {"BEACON", "CobaltStrike"} <= set(body["attributes"]["aliases"])
    assert body["source"] == "threatfox"


def test_an_iocs_body_carries_its_confidence_times_and_reporter(result: ImportResult) -> None:
    (body,) = [
        e for e in result.entities if e["attributes"].get("url") == "https://sup.merahsm188.top/"
    ]
    assert (body["source"], body["confidence"], body["firstSeen"]) == (
        "threatfox",
        100,
        "2026-07-24T13:50:06Z",
    )
    assert body["attributes"]["reporters"] == ["crep1x"]
