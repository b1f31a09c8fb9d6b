"""MISP: file objects are File entities; downloaded-from, connected-to, dropped-by, contains."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from assoc_ingest.importers import ImportResult, import_feed
from schemas import AssociationRules, AssociationType, Kind, entity_id
from tests.assoc_ingest.importers.bodies import (
    assert_bodies_are_valid,
    count_by_association_type,
    count_by_type,
    links,
)

EVENT = "misp-moustachedbouncer.event.json"


@pytest.fixture(scope="module")
def result(feeds_dir: Path) -> ImportResult:
    return import_feed("misp", feeds_dir / EVENT)


def test_each_file_object_is_one_sha256_entity_with_its_other_hashes(result: ImportResult) -> None:
    assert count_by_type(result)["sha256"] == 29
    sha256 = "b654f03e7e9125169088a8b4ee5cd04e3f96982ff1148eef2781d9f2613b08bb"
    (body,) = [e for e in result.entities if e["attributes"].get("sha256") == sha256]
    assert body["attributes"]["md5"] == "41898dae353a85c04282979c44448beb"
    assert body["attributes"]["sha1"] == "02790dc4b276dfbb26c714f29d19e53129bb6186"
    assert body["attributes"]["filename"] == "index.html"
    assert body["attributes"]["detection"] == "JS/TrojanDownloader.Agent.YJJ"


def test_references_become_default_association_types(result: ImportResult) -> None:
    assert count_by_association_type(result) == {
        "File Download": 8,  # file -downloaded-from-> url
        "URL Host": 11,  # url -contains-> domain-ip
        "File Traffic": 3,  # file -connected-to-> url
        "File Drop": 1,  # file -dropped-by-> file, reversed
    }


def test_downloaded_from_is_url_to_file(result: ImportResult) -> None:
    url = entity_id("url", "http://updates.microsoft.com")
    index_html = entity_id(
        "sha256", "b654f03e7e9125169088a8b4ee5cd04e3f96982ff1148eef2781d9f2613b08bb"
    )
    assert (url, index_html) in links(result, "File Download")


def test_dropped_by_is_reversed_so_the_dropper_is_primary(result: ImportResult) -> None:
    dropper = entity_id(
        "sha256", "ee2c61216ed691f8bf1f080fb9c7d7cfc6f370e6f5c0d493db523b48e699a2ec"
    )
    dropped = entity_id(
        "sha256", "39d534148fe7ac7f3e03da1ceeee556b2e1db9cf466f7e03c24c4f899aa0c407"
    )
    assert links(result, "File Drop") == {(dropper, dropped)}


def test_what_the_matrix_cannot_carry_is_counted(result: ImportResult) -> None:
    assert result.dropped["pair not allowed by the matrix: Host->Address"] == 5
    assert result.dropped["unsupported MISP object: victim"] == 1
    assert count_by_type(result)["email-address"] == 4


def test_every_body_is_valid_and_allowed(result: ImportResult) -> None:
    assert_bodies_are_valid(result)


def test_a_custom_type_of_the_matrix_in_force_carries_the_resolutions(feeds_dir: Path) -> None:
    a_record = AssociationType("A Record", Kind.HOST, frozenset({Kind.ADDRESS}), False, True)
    result = import_feed(
        "misp", feeds_dir / "misp-moustachedbouncer.event.json", rules=AssociationRules([a_record])
    )
    assert len(links(result, "A Record")) == 5
    assert "pair not allowed by the matrix: Host->Address" not in result.dropped


def test_every_dropped_record_is_listed_with_its_reason_and_source(result: ImportResult) -> None:
    assert len(result.rejects) == sum(result.dropped.values())
    assert Counter(entry["reason"] for entry in result.rejects) == result.dropped
    resolution = next(e for e in result.rejects if e["reason"].endswith("Host->Address"))
    assert resolution["entityID"].startswith("domain-")
    assert resolution["relatedEntityID"].startswith("ip-")
    assert resolution["record"]["reference"]["relationship_type"] == "resolved-to"
