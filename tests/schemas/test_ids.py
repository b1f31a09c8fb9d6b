"""Entity and association IDs are content addressed."""

from __future__ import annotations

from hashlib import sha3_256

import pytest

from schemas import (
    CATALOGUE,
    ENTITY_ID_RE,
    InvalidEntityId,
    association_id,
    entity_id,
    entity_id_of_normalised,
    parse_entity_id,
)


def test_the_spec_example_domain_id() -> None:
    expected = "domain-" + sha3_256(b"www.example.com").hexdigest()
    assert entity_id("domain", "WWW.Example.COM") == expected


def test_the_id_hashes_the_utf8_of_the_normalised_value() -> None:
    assert entity_id("value", " Grüße ") == "value-" + sha3_256("Grüße".encode()).hexdigest()
    assert entity_id_of_normalised("ip", "8.8.8.8") == entity_id("ip", "8.8.8.8")


def test_the_association_id_hashes_the_plain_concatenation() -> None:
    a, b = entity_id("asn", "15169"), entity_id("ip", "8.8.8.8")
    assert association_id(a, b) == sha3_256((a + b).encode()).hexdigest()
    assert association_id(a, b) != association_id(b, a)


@pytest.mark.parametrize("type_name", ["ip", "sha3-256", "sha512-224", "email-address"])
def test_an_id_names_its_type_even_when_the_type_has_hyphens(type_name: str) -> None:
    eid = f"{type_name}-{'ab' * 32}"
    assert parse_entity_id(eid) is CATALOGUE[type_name]
    assert ENTITY_ID_RE.match(eid)


@pytest.mark.parametrize(
    "eid",
    [
        "",
        "ip",
        "ip-" + "a" * 63,
        "ip-" + "a" * 65,
        "ip-" + "A" * 64,
        "ip-" + "g" * 64,
        "ip_" + "a" * 64,
        "nope-" + "a" * 64,
        "IP-" + "a" * 64,
        "sha3-" + "a" * 64,
        "-" + "a" * 64,
        " ip-" + "a" * 64,
    ],
)
def test_strings_that_are_not_ids_are_refused(eid: str) -> None:
    with pytest.raises(InvalidEntityId):
        parse_entity_id(eid)
    assert not ENTITY_ID_RE.match(eid)


def test_a_long_garbage_id_gives_a_short_message() -> None:
    with pytest.raises(InvalidEntityId) as caught:
        parse_entity_id("x" * 100_000)
    assert len(str(caught.value)) < 200
