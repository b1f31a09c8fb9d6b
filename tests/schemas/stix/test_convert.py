"""``schemas.stix.convert_bundle``: every object of the real files accounted for, the links real
publishers write (indicator patterns, embedded references, MISP wrappers, relationships)
matched as in SPEC §2, provenance carried, and no input that makes it fail."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import entity_id
from schemas.stix import Conversion, ConvertedLink, Provenance, bundle_objects, convert_bundle
from tests.stix_files import FILES, load, objects

# file -> (objects per outcome, not represented per reason, entities, associations)
EXPECTED: dict[str, tuple[dict[str, int], dict[str, int], int, int]] = {
    "oasis_poisonivy.json": (
        {"total": 155, "entity": 59, "association": 83, "not_represented": 13},
        {"provenance": 1, "unsupported_type": 12},
        78,
        137,
    ),
    "elevator_fireeye_pivy_report_with_indicators.json": (
        {"total": 4800, "entity": 1055, "association": 2040, "not_represented": 1705},
        {
            "dangling_reference": 94,
            "invalid_entity": 11,
            "provenance": 4,
            "unsupported_pattern": 724,
            "unsupported_type": 872,
        },
        854,
        2273,
    ),
    "elevator_mandiant_apt1_report.json": (
        {"total": 178, "entity": 34, "association": 14, "not_represented": 130},
        {"invalid_entity": 1, "provenance": 16, "unsupported_type": 113},
        34,
        14,
    ),
    "stix2_sco_examples_bundle.json": (
        {"total": 82, "entity": 64, "association": 0, "not_represented": 18},
        {"association_not_allowed": 8, "invalid_entity": 2, "no_entity": 2, "unsupported_type": 6},
        46,
        11,
    ),
    "cape2stix_test_converted.json": (
        {"total": 73, "entity": 20, "association": 28, "not_represented": 25},
        {"invalid_entity": 5, "no_entity": 1, "provenance": 2, "unsupported_type": 17},
        20,
        30,
    ),
    "eset_moustachedbouncer_misp2stix21.json": (
        {"total": 276, "entity": 166, "association": 56, "not_represented": 54},
        {
            "invalid_entity": 8,
            "no_entity": 4,
            "provenance": 1,
            "self_association": 39,
            "unsupported_type": 2,
        },
        77,
        56,
    ),
}


def convert(name: str) -> Conversion:
    return convert_bundle(bundle_objects(load(name)))


def types_of(links: list[ConvertedLink]) -> Counter[str]:
    return Counter(link.association_type for link in links)


@pytest.mark.parametrize("name", FILES)
def test_every_object_of_each_real_file_has_exactly_one_account(name: str) -> None:
    conversion = convert(name)
    counts, reasons, entities, associations = EXPECTED[name]

    assert [o.index for o in conversion.outcomes] == list(range(len(objects(name))))
    assert conversion.counts() == counts
    assert conversion.reasons() == reasons
    assert (len(conversion.entities), len(conversion.links)) == (entities, associations)
    for outcome in conversion.outcomes:
        assert (outcome.code is None) == (outcome.outcome != "not_represented")
        assert outcome.message or outcome.outcome != "not_represented"


def test_poison_ivy_indicators_indicate_their_malware_and_campaigns() -> None:
    conversion = convert("oasis_poisonivy.json")

    assert types_of(conversion.links) == {"indicates": 109, "uses": 22, "targets": 6}
    indicates = [link for link in conversion.links if link.association_type == "indicates"]
    assert {link.entity_id[:-65] for link in indicates} == {"ip", "domain", "filename"}
    assert {link.related_id[:-65] for link in indicates} == {
        "malware-family",
        "malware",
        "campaign",
    }
    cve = entity_id("cve", "CVE-2012-0158")
    assert any(link.related_id == cve for link in conversion.links)


def test_a_pattern_domain_resolving_to_addresses_is_a_dns_record_of_each_address() -> None:
    conversion = convert("elevator_fireeye_pivy_report_with_indicators.json")
    types = types_of(conversion.links)
    assert types["DNS PTR Record"] == 440
    assert types["indicates"] == 1285 and types["uses"] == 348
    domain = entity_id("domain", "www.dhcpserver.ns01.us")
    address = entity_id("ip", "219.90.112.203")
    assert any(
        (link.entity_id, link.related_id, link.association_type)
        == (address, domain, "DNS PTR Record")
        for link in conversion.links
    )
    # A private address among a pattern's is left out, counted, and the others kept.
    assert conversion.notes["invalid_entity"] == 46
    assert conversion.notes["unrepresented_comparison"] == 553


def test_misp_relationships_between_wrappers_become_matrix_and_context_associations() -> None:
    conversion = convert("eset_moustachedbouncer_misp2stix21.json")
    assert types_of(conversion.links) == {
        "detected-as": 29,
        "URL Host": 11,
        "File Download": 8,
        "DNS PTR Record": 5,
        "File Traffic": 3,
    }
    file_hash = "b654f03e7e9125169088a8b4ee5cd04e3f96982ff1148eef2781d9f2613b08bb"
    [index_html] = [e for e in conversion.entities if e.value == file_hash]
    assert index_html.type == "sha256"
    assert index_html.attributes["md5"] == "41898dae353a85c04282979c44448beb"
    assert index_html.attributes["filename"] == "index.html"
    # Observed 2023-07-21 (its observed-data); indicated from 2022-03-01 (its indicator).
    assert index_html.provenance == {
        "ESET": Provenance("ESET", None, None, "2022-03-01T05:53:02Z", "2023-07-21T13:34:28Z")
    }


def test_embedded_references_link_observables() -> None:
    conversion = convert("stix2_sco_examples_bundle.json")
    assert types_of(conversion.links) == {
        "File Archive": 3,
        "sent-to": 3,
        "sent-from": 2,
        "located-in": 2,
        "DNS PTR Record": 1,
    }
    kinds = {e.type for e in conversion.entities}
    assert {"cidr", "asn", "mac-address", "user-agent", "email-subject", "username"} <= kinds


BUNDLE_ID = "bundle--0f8a7c44-3b7f-4e59-9a8e-8b2f1b3d2c11"


def bundle(*stix_objects: dict[str, Any]) -> list[dict[str, Any]]:
    return list(stix_objects)


IDENTITY = {"type": "identity", "id": "identity--1", "name": "ACME CERT"}
GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def test_provenance_comes_from_the_creator_confidence_markings_and_times() -> None:
    conversion = convert_bundle(
        bundle(
            IDENTITY,
            {"type": "indicator", "id": "indicator--2", "created_by_ref": "identity--1",
             "confidence": 80, "object_marking_refs": [GREEN],
             "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix",
             "valid_from": "2024-01-02T03:04:05Z"},
            {"type": "malware", "id": "malware--3", "name": "Emotet", "is_family": True,
             "created_by_ref": "identity--1"},
            {"type": "relationship", "id": "relationship--4", "relationship_type": "indicates",
             "source_ref": "indicator--2", "target_ref": "malware--3",
             "created_by_ref": "identity--1", "confidence": 60,
             "start_time": "2024-01-01T00:00:00Z", "stop_time": "2024-02-01T00:00:00Z"},
        )
    )  # fmt: skip
    address = entity_id("ip", "198.51.100.7")
    [ip] = [e for e in conversion.entities if e.id == address]
    assert ip.provenance == {
        "ACME CERT": Provenance("ACME CERT", 80, "green", "2024-01-02T03:04:05Z", None)
    }
    [link] = conversion.links
    assert (link.entity_id, link.related_id) == (address, entity_id("malware-family", "emotet"))
    assert link.association_type == "indicates"
    assert link.provenance == {
        "ACME CERT": Provenance(
            "ACME CERT", 60, None, "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"
        )
    }
    assert [o.outcome for o in conversion.outcomes] == [
        "not_represented", "entity", "entity", "association",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "code"),
    [
        ("[url:value MATCHES '^http']", "pattern_too_complex"),
        ("[file:x_custom = 'a']", "unsupported_pattern"),
        ("not a pattern", "invalid_pattern"),
    ],
)
def test_an_indicator_whose_pattern_names_nothing_says_why(pattern: str, code: str) -> None:
    indicator = {"type": "indicator", "id": "indicator--1", "pattern": pattern}
    [outcome] = convert_bundle([indicator]).outcomes
    assert (outcome.outcome, outcome.code) == ("not_represented", code)


def test_a_sigma_rule_is_an_unsupported_pattern() -> None:
    indicator = {"type": "indicator", "id": "indicator--1", "pattern": "x", "pattern_type": "sigma"}
    [outcome] = convert_bundle([indicator]).outcomes
    assert outcome.code == "unsupported_pattern"


def test_a_relationship_is_refused_with_the_reason_of_its_end() -> None:
    outcomes = convert_bundle(
        bundle(
            {"type": "malware", "id": "malware--1", "name": "x", "is_family": False},
            {"type": "course-of-action", "id": "course-of-action--2", "name": "patch"},
            {"type": "relationship", "id": "relationship--3", "relationship_type": "mitigates",
             "source_ref": "course-of-action--2", "target_ref": "malware--1"},
            {"type": "relationship", "id": "relationship--4", "relationship_type": "uses",
             "source_ref": "malware--1", "target_ref": "tool--absent"},
            {"type": "ipv4-addr", "id": "ipv4-addr--5", "value": "198.51.100.1"},
            {"type": "autonomous-system", "id": "autonomous-system--6", "number": 64500},
            {"type": "relationship", "id": "relationship--7", "relationship_type": "belongs-to",
             "source_ref": "autonomous-system--6", "target_ref": "ipv4-addr--5"},
            {"type": "ipv4-addr", "id": "ipv4-addr--8", "value": "198.51.100.2"},
            {"type": "relationship", "id": "relationship--9", "relationship_type": "related-to",
             "source_ref": "ipv4-addr--5", "target_ref": "ipv4-addr--8"},
        )
    ).outcomes  # fmt: skip
    assert [(o.index, o.outcome, o.code) for o in outcomes if o.stix_type == "relationship"] == [
        (2, "not_represented", "unsupported_type"),
        (3, "not_represented", "dangling_reference"),
        (6, "association", None),
        (8, "not_represented", "association_not_allowed"),
    ]


def test_a_bundle_must_be_a_bundle_or_an_array() -> None:
    assert bundle_objects([{"type": "x"}]) == [{"type": "x"}]
    assert bundle_objects({"type": "bundle", "id": BUNDLE_ID, "objects": []}) == []
    for wrong in ({"type": "indicator"}, {"type": "bundle", "objects": {}}, "text", 3):
        with pytest.raises(ValueError):
            bundle_objects(wrong)


# No input makes the conversion fail: generated objects, and real objects with fields replaced.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_REAL = [obj for name in FILES[:1] + FILES[3:] for obj in objects(name)]


@st.composite
def _mangled(draw: st.DrawFn) -> Any:
    obj = dict(draw(st.sampled_from(_REAL)))
    wrong = st.sampled_from([None, 0, -1, 1.5, True, "", [], {}, ["x"], {"type": "x"}])
    for key in draw(st.lists(st.sampled_from(sorted(obj)), max_size=3)):
        obj[key] = draw(wrong | _json)
    return obj


@settings(max_examples=150, deadline=None)
@given(st.lists(_json | _mangled(), max_size=12))
def test_any_objects_are_accounted_for_without_failing(stix_objects: list[Any]) -> None:
    conversion = convert_bundle(stix_objects)
    assert len(conversion.outcomes) == len(stix_objects)
    for entity in conversion.entities:
        assert entity.attributes[entity.type] == entity.value
