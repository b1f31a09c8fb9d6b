"""CAPE: the File Actions of the report's target file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from assoc_ingest.importers import ImportResult, import_feed
from schemas import entity_id
from tests.assoc_ingest.importers.bodies import (
    assert_bodies_are_valid,
    count_by_association_type,
    links,
)

SHA256 = "0000a65749f5902c4d82ffa701198038f0b4870b00a27cfca109f8f933476d82"
TARGET = entity_id("sha256", SHA256)


@pytest.fixture(scope="module")
def report_path(feeds_dir: Path) -> Path:
    return feeds_dir / f"{SHA256}.json.gz"


@pytest.fixture(scope="module")
def report(report_path: Path) -> dict[str, Any]:
    with gzip.open(report_path, "rt", encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


@pytest.fixture(scope="module")
def result(report_path: Path) -> ImportResult:
    return import_feed("cape", report_path)


def targets(result: ImportResult, type_name: str) -> set[str]:
    return {related for primary, related in links(result, type_name) if primary == TARGET}


def test_the_target_is_a_sha256_file_with_its_other_hashes(result: ImportResult) -> None:
    (body,) = [e for e in result.entities if e["attributes"].get("sha256") == SHA256]
    assert body["attributes"]["md5"] == "e2147b5333879f98d515cd9aa905d489"
    assert body["attributes"]["sha1"] == "ad4d520fb7792b4a5701df973d6bd8a6cbfbb57f"
    assert body["tags"] == ["QakBot"]


def test_every_mutex_is_a_file_mutex_of_the_target(
    result: ImportResult, report: dict[str, Any]
) -> None:
    mutexes = report["behavior"]["summary"]["mutexes"]
    assert len(mutexes) == 16
    assert targets(result, "File Mutex") == {entity_id("mutex", m) for m in mutexes}
    assert entity_id("mutex", "Global\\jxoqwn") in targets(result, "File Mutex")


def test_every_written_registry_key_is_a_file_registry_key(
    result: ImportResult, report: dict[str, Any]
) -> None:
    keys = report["behavior"]["summary"]["write_keys"]
    assert len(keys) == 116
    assert targets(result, "File Registry Key") == {entity_id("regkey", k) for k in keys}


def test_dropped_files_and_payloads_are_file_drops(
    result: ImportResult, report: dict[str, Any]
) -> None:
    hashes = {f["sha256"] for f in report["dropped"]} | {
        p["sha256"] for p in report["CAPE"]["payloads"]
    }
    hashes.discard(SHA256)  # one payload is the sample itself: not a drop of itself
    assert targets(result, "File Drop") == {entity_id("sha256", h) for h in hashes}
    assert result.dropped["self association: File Drop"] == 1


def test_network_activity_is_file_traffic_and_dns_query(result: ImportResult) -> None:
    assert targets(result, "File DNS Query") == {entity_id("domain", "www.ip-adress.com")}
    traffic = targets(result, "File Traffic")
    assert entity_id("ip", "216.201.159.118") in traffic
    assert entity_id("ip", "1.1.1.1") in traffic
    assert entity_id("url", "http://216.201.159.118:443//cHOPH1oQ.php") in traffic
    assert entity_id("domain", "www.ip-adress.com") in traffic
    # the sandbox gateway 172.20.1.3 appears four times in dead_hosts
    assert result.dropped["invalid ip: a private address (RFC 1918)"] == 4
    assert result.dropped["pair not allowed by the matrix: Host->Address"] == 1


def test_the_user_agent_is_a_file_user_agent(result: ImportResult) -> None:
    (agent,) = targets(result, "File User Agent")
    (body,) = [e for e in result.entities if e["type"] == "user-agent"]
    assert agent == entity_id("user-agent", body["attributes"]["user-agent"])
    assert body["attributes"]["user-agent"].startswith("Mozilla/4.0 (compatible; MSIE 8.0;")


def test_every_association_starts_at_the_target_except_url_hosts(result: ImportResult) -> None:
    counts = count_by_association_type(result)
    assert counts["URL Host"] == 8  # the eight distinct http_request URLs
    others = [a for a in result.associations if a["associationType"] != "URL Host"]
    assert {a["entityID"] for a in others} == {TARGET}


def test_every_body_is_valid_and_allowed(result: ImportResult) -> None:
    assert_bodies_are_valid(result)


def test_the_target_is_a_sample_of_the_detected_family_as_the_analysis_saw_it(
    result: ImportResult, report: dict[str, Any]
) -> None:
    assert links(result, "sample-of") == {(TARGET, entity_id("malware-family", "QakBot"))}
    assert report["info"]["started"] == "2021-08-02 02:49:03"
    for body in [*result.entities, *result.associations]:
        assert body["source"] == "cape"
        assert (body["firstSeen"], body["lastSeen"]) == (
            "2021-08-02T02:49:03Z",
            "2021-08-02T02:52:54Z",
        )
