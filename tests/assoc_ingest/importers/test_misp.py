"""MISP: file objects are File entities; downloaded-from, connected-to, dropped-by, contains."""

from __future__ import annotations

import json
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
    matrix = {
        name: count
        for name, count in count_by_association_type(result).items()
        if name not in ("indicates", "detected-as")
    }
    assert matrix == {
        "File Download": 8,  # file -downloaded-from-> url
        "URL Host": 11,  # url -contains-> domain-ip
        "File Traffic": 3,  # file -connected-to-> url
        "File Drop": 1,  # file -dropped-by-> file, reversed
    }


def test_every_entity_of_the_event_indicates_the_subject_its_info_names(
    result: ImportResult,
) -> None:
    threat = entity_id("threat", "MoustachedBouncer")
    (body,) = [e for e in result.entities if e["type"] == "threat"]
    assert body["attributes"]["threat"] == "moustachedbouncer"
    assert body["attributes"]["misp_event"].startswith("MoustachedBouncer: Espionage")
    indicating = {a for a, b in links(result, "indicates") if b == threat}
    # 4 email attributes, 29 files, 11 URLs, 6 domains and 11 addresses of domain-ip objects
    assert len(indicating) == 4 + 29 + 11 + 6 + 11 == 61
    assert entity_id("email-address", "glen.morriss75@seznam.cz") in indicating


def test_a_file_is_detected_as_each_av_signature_it_references(result: ImportResult) -> None:
    detected = links(result, "detected-as")
    assert len(detected) == 29  # file -detected-as-> av-signature
    index_html = entity_id(
        "sha256", "b654f03e7e9125169088a8b4ee5cd04e3f96982ff1148eef2781d9f2613b08bb"
    )
    assert (index_html, entity_id("malware", "JS/TrojanDownloader.Agent.YJJ")) in detected
    assert count_by_type(result)["malware"] == 14  # distinct signatures; "ESET" is the engine


def test_every_body_names_misp_and_the_first_seen_of_its_attribute_or_object(
    result: ImportResult,
) -> None:
    assert {body.get("source") for body in [*result.entities, *result.associations]} == {"misp"}
    (domain,) = [e for e in result.entities if e["attributes"].get("domain") == "dervasopssec.com"]
    assert (domain["firstSeen"], domain.get("lastSeen")) == ("2022-10-12T00:00:00Z", None)
    (address,) = [e for e in result.entities if e["attributes"].get("ip") == "38.9.8.78"]
    assert address["firstSeen"] == "2022-03-07T11:49:25Z"  # the host of a URL object seen then
    (email,) = [e for e in result.entities if e["type"] == "email-address"][:1]
    assert "firstSeen" not in email  # nothing says when


def test_tlp_tags_galaxies_and_galaxy_tags_become_provenance_and_context(tmp_path: Path) -> None:
    event = {
        "Event": {
            "info": "An event without a subject",
            "uuid": "e",
            "Tag": [{"name": "tlp:amber"}, {"name": 'misp-galaxy:threat-actor="APT28"'}],
            "Galaxy": [
                {"type": "malpedia", "GalaxyCluster": [{"value": "X-Agent"}]},
                {"type": "mitre-attack-pattern", "GalaxyCluster": [{"value": "T1566"}]},
            ],
            "Attribute": [
                {
                    "type": "ip-dst",
                    "value": "203.0.113.9",
                    "first_seen": "2024-01-02T03:04:05.000000+00:00",
                    "last_seen": "2024-02-01T00:00:00.000000+00:00",
                },
                {
                    "type": "domain",
                    "value": "evil.example",
                    "Tag": [{"name": "tlp:red"}, {"name": 'misp-galaxy:malpedia="Zebrocy"'}],
                },
            ],
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    result = import_feed("misp", path)

    address, domain = entity_id("ip", "203.0.113.9"), entity_id("domain", "evil.example")
    apt28, xagent = entity_id("adversary", "APT28"), entity_id("malware-family", "X-Agent")
    zebrocy = entity_id("malware-family", "Zebrocy")
    assert links(result, "indicates") == {
        (address, apt28),
        (address, xagent),
        (domain, apt28),
        (domain, xagent),
        (domain, zebrocy),
    }
    bodies = {e["attributes"][e["type"]]: e for e in result.entities}
    assert bodies["203.0.113.9"]["tlp"] == "amber"
    assert bodies["203.0.113.9"]["firstSeen"] == "2024-01-02T03:04:05Z"
    assert bodies["203.0.113.9"]["lastSeen"] == "2024-02-01T00:00:00Z"
    assert bodies["evil.example"]["tlp"] == "red"
    assert result.dropped["MISP event info names no subject ('Name: description')"] == 1
    assert_bodies_are_valid(result)


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


def test_with_a_custom_type_context_links_stay_and_no_reject_has_a_context_end(
    result: ImportResult, feeds_dir: Path
) -> None:
    a_record = AssociationType("A Record", Kind.HOST, frozenset({Kind.ADDRESS}), False, True)
    custom = import_feed("misp", feeds_dir / EVENT, rules=AssociationRules([a_record]))
    assert links(custom, "indicates") == links(result, "indicates") != set()
    assert links(custom, "detected-as") == links(result, "detected-as")
    for rejects in (result.rejects, custom.rejects):
        for entry in rejects:
            if "entityID" in entry:
                assert not AssociationRules.is_context_pair(
                    entry["entityID"], entry["relatedEntityID"]
                ), entry
    assert all(body["source"] == "misp" for body in custom.associations)
