"""The entity type catalogue is one table of data."""

from __future__ import annotations

import pytest

from schemas import CATALOGUE, DataType, Kind, UnknownEntityType, entity_type, main_attribute

HASH_LENGTHS = {
    "md5": 32,
    "sha1": 40,
    "sha224": 56,
    "sha256": 64,
    "sha384": 96,
    "sha512": 128,
    "sha3-224": 56,
    "sha3-256": 64,
    "sha3-384": 96,
    "sha3-512": 128,
    "sha512-224": 56,
    "sha512-256": 64,
}

SPEC_KINDS = {
    "ip": Kind.ADDRESS,
    "domain": Kind.HOST,
    "hostname": Kind.HOST,
    "url": Kind.URL,
    "file": Kind.FILE,
    "email-address": Kind.EMAIL_ADDRESS,
    "asn": Kind.ASN,
    "cidr": Kind.CIDR,
    "mutex": Kind.MUTEX,
    "regkey": Kind.REGISTRY_KEY,
    "user-agent": Kind.USER_AGENT,
    **dict.fromkeys(HASH_LENGTHS, Kind.FILE),
}

SPEC_DATA_TYPES = {
    "ip": DataType.IP,
    "domain": DataType.FQDN,
    "hostname": DataType.FQDN,
    "url": DataType.URL,
    "link": DataType.URL,
    "malware-sample": DataType.URL,
    "file-data": DataType.URL,
    "email-address": DataType.EMAIL,
    "file": DataType.FILE,
    "asn": DataType.ASN,
    "cidr": DataType.CIDR,
    "malware": DataType.ISTR,
    "malware-family": DataType.ISTR,
    "threat": DataType.ISTR,
    "regkey": DataType.ISTR,
    "filename": DataType.ISTR,
    "cve": DataType.ISTR,
    "aso": DataType.ISTR,
    "text": DataType.ISTR,
    "mutex": DataType.STR,
    "user-agent": DataType.STR,
    "value": DataType.STR,
    "cookie": DataType.STR,
    "btc": DataType.STR,
    **dict.fromkeys(HASH_LENGTHS, DataType.HASH),
}


@pytest.mark.parametrize(("name", "data_type"), SPEC_DATA_TYPES.items())
def test_spec_types_have_their_data_type(name: str, data_type: DataType) -> None:
    assert CATALOGUE[name].data_type is data_type


@pytest.mark.parametrize(("name", "kind"), SPEC_KINDS.items())
def test_spec_types_belong_to_their_kind(name: str, kind: Kind) -> None:
    assert CATALOGUE[name].kind is kind


def test_only_the_spec_types_have_a_kind() -> None:
    with_kind = {name for name, row in CATALOGUE.items() if row.kind is not None}
    assert with_kind == set(SPEC_KINDS)


@pytest.mark.parametrize(("name", "length"), HASH_LENGTHS.items())
def test_hash_types_have_their_exact_hex_length(name: str, length: int) -> None:
    assert CATALOGUE[name].hex_length == length


def test_every_hash_type_knows_its_length() -> None:
    for row in CATALOGUE.values():
        assert (row.data_type is DataType.HASH) == (row.hex_length is not None), row.name


def test_every_data_type_is_used_and_every_type_is_described() -> None:
    assert {row.data_type for row in CATALOGUE.values()} == set(DataType)
    assert all(row.description for row in CATALOGUE.values())


def test_the_catalogue_includes_other_threatwinds_types() -> None:
    assert {"mac-address", "port", "phone", "date", "city", "country", "ja3-fingerprint"} <= set(
        CATALOGUE
    )
    assert len(CATALOGUE) > 120


def test_the_catalogue_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["new"] = CATALOGUE["ip"]  # type: ignore[index]


def test_main_attribute_is_named_like_the_type() -> None:
    assert main_attribute("sha3-256") == "sha3-256"


def test_unknown_types_are_refused_with_their_own_code() -> None:
    with pytest.raises(UnknownEntityType) as caught:
        entity_type("ipv4")
    assert caught.value.code == "unknown_entity_type"
    with pytest.raises(UnknownEntityType):
        main_attribute("IP")
