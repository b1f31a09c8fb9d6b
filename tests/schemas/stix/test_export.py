"""``schemas.stix.export``: a bundle the OASIS validator accepts, with the deterministic IDs
STIX prescribes for observables, that converts back to the same entities, associations and
sources, for an entity of every type of the catalogue."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import stix2
from stix2validator import ValidationOptions, validate_instance

from schemas import CATALOGUE, DataType, association_id, entity_id, normalise
from schemas.rules import AssociationRules
from schemas.stix import convert_bundle
from schemas.stix.export import ExportAssociation, ExportEntity, Source, export_bundle, timestamp

SAMPLES: dict[DataType, str] = {
    DataType.IP: "198.51.100.7",
    DataType.FQDN: "www.example.com",
    DataType.URL: "https://example.com/a?b=c",
    DataType.EMAIL: "Someone@Example.com",
    DataType.FILE: "d41d8cd98f00b204e9800998ecf8427e",
    DataType.ASN: "AS64500",
    DataType.CIDR: "198.51.100.0/24",
    DataType.ISTR: "Some Name",
    DataType.STR: "Some Value",
    DataType.INT: "12345",
    DataType.PORT: "443",
    DataType.MAC: "AA-BB-CC-DD-EE-FF",
    DataType.UUID: str(uuid.UUID(int=7)),
    DataType.DATE: "2024-01-02",
    DataType.HEX: "ABCDEF",
}
ACME = Source("ACME CERT", 80, "amber", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00.5Z")
T0 = 1_700_000_000.0


def sample(type_name: str) -> str:
    row = CATALOGUE[type_name]
    if row.hex_length is not None:
        return "ab" * (row.hex_length // 2)
    return SAMPLES[row.data_type]


def exported(type_name: str, **attributes: Any) -> ExportEntity:
    value = normalise(type_name, sample(type_name))
    return ExportEntity(
        entity_id(type_name, value),
        type_name,
        {type_name: value, **attributes},
        T0,
        T0 + 60,
        (ACME,),
    )


EVERY_TYPE = [exported(name, note="kept") for name in sorted(CATALOGUE)]


def validate(bundle: dict[str, Any]) -> None:
    results = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert results.is_valid, [str(error) for error in results.errors]


def test_an_entity_of_every_type_exports_to_a_valid_bundle_and_converts_back() -> None:
    bundle = export_bundle(EVERY_TYPE, [])
    validate(bundle)
    conversion = convert_bundle(bundle["objects"])

    got = {e.id: e for e in conversion.entities}
    for entity in EVERY_TYPE:
        back = got[entity.id]
        assert (back.type, back.attributes) == (entity.type, dict(entity.attributes))
        [provenance] = back.provenance.values()
        assert (provenance.source, provenance.confidence, provenance.tlp) == (
            "ACME CERT", 80, "amber",
        )  # fmt: skip
        assert (provenance.first_seen, provenance.last_seen) == (ACME.first_seen, ACME.last_seen)
    assert conversion.counts()["not_represented"] == sum(
        1 for o in bundle["objects"] if o["type"] in ("identity", "marking-definition")
    )


@pytest.mark.parametrize(
    ("type_name", "library_object"),
    [
        ("ip", stix2.v21.IPv4Address(value="198.51.100.7")),
        ("domain", stix2.v21.DomainName(value="www.example.com")),
        ("url", stix2.v21.URL(value="https://example.com/a?b=c")),
        ("email-address", stix2.v21.EmailAddress(value="someone@example.com")),
        ("asn", stix2.v21.AutonomousSystem(number=64500)),
        ("mutex", stix2.v21.Mutex(name="Some Value")),
        ("regkey", stix2.v21.WindowsRegistryKey(key="some name")),
        ("md5", stix2.v21.File(hashes={"MD5": "ab" * 16})),
        ("sha256", stix2.v21.File(hashes={"SHA-256": "ab" * 32})),
        ("filename", stix2.v21.File(name="some name")),
        ("email-subject", stix2.v21.EmailMessage(is_multipart=False, subject="some name")),
    ],
)
def test_observables_get_the_ids_stix_prescribes(type_name: str, library_object: Any) -> None:
    [obj] = [
        o
        for o in export_bundle([exported(type_name)], [])["objects"]
        if o["type"] == library_object["type"]
    ]
    assert obj["id"] == library_object["id"]


def test_the_same_state_exports_the_same_bundle() -> None:
    first = export_bundle(EVERY_TYPE, [])
    assert export_bundle(EVERY_TYPE, []) == first
    assert first["id"].startswith("bundle--")


def test_associations_export_as_relationships_that_convert_back_to_the_same_types() -> None:
    asn, ip, domain, md5, family = (
        exported(name) for name in ("asn", "ip", "domain", "md5", "malware-family")
    )
    both = (ACME, Source("feodo", 60, "clear", "2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z"))

    def association(a: ExportEntity, b: ExportEntity, *names: str) -> ExportAssociation:
        return ExportAssociation(association_id(a.id, b.id), a.id, b.id, names, T0, T0, both)

    associations = [
        association(asn, ip, "ASN to Address"),
        association(ip, domain, "DNS PTR Record"),
        association(md5, domain, "File DNS Query", "File Traffic"),  # ambiguous without a name
        association(ip, family, "c2-of"),
    ]
    bundle = export_bundle([asn, ip, domain, md5, family], associations)
    validate(bundle)
    relationships = [o for o in bundle["objects"] if o["type"] == "relationship"]
    assert len(relationships) == 5 * 2  # one per type and per source
    assert {r["relationship_type"] for r in relationships} == {
        "asn-to-address", "dns-ptr-record", "file-dns-query", "file-traffic", "c2-of",
    }  # fmt: skip

    conversion = convert_bundle(bundle["objects"], AssociationRules())
    got = {
        (link.entity_id, link.related_id, link.association_type): link for link in conversion.links
    }
    for a in associations:
        for name in a.association_types:
            link = got[(a.entity_id, a.related_id, name)]
            assert {(p.source, p.confidence, p.tlp) for p in link.provenance.values()} == {
                ("ACME CERT", 80, "amber"),
                ("feodo", 60, "clear"),
            }
            feodo = link.provenance["feodo"]
            # an equal start and stop cannot be written (stop_time must follow start_time)
            assert (feodo.first_seen, feodo.last_seen) == ("2024-03-01T00:00:00Z", None)
    assert len(got) == 5


def test_timestamps_keep_milliseconds_or_microseconds() -> None:
    assert timestamp(T0) == "2023-11-14T22:13:20.000Z"
    assert timestamp(T0 + 0.25) == "2023-11-14T22:13:20.250Z"
    assert timestamp(T0 + 0.123456) == "2023-11-14T22:13:20.123456Z"
