"""Hostile main attributes against the normaliser, for every type of the catalogue: the answer
is always text that normalises to itself, or ``NormalisationError``; never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    CATALOGUE,
    ENTITY_ID_RE,
    DataType,
    NormalisationError,
    entity_id,
    normalise,
)
from tests.fuzz.support import fuzz_settings

TYPES = sorted(CATALOGUE)

# Plausible values per data type, so that hostile edits also land on values that normalise.
SEEDS: dict[DataType, list[str]] = {
    DataType.IP: ["203.0.113.5", "2001:db8::1", "::ffff:198.51.100.7", "8.8.8.8"],
    DataType.FQDN: ["example.com", "WWW.Example.COM.", "bücher.de", "xn--bcher-kva.de"],
    DataType.URL: [
        "http://Example.com/a?b=1#c",
        "HTTPS://user@host.example:8443/p",
        "ftp://[2001:db8::1]/",
    ],
    DataType.EMAIL: ['"Bob" <B@X.org>', "a@example.com", "(c)a@example.com"],
    DataType.HASH: ["d41d8cd98f00b204e9800998ecf8427e", "A" * 40, "f" * 64, "0" * 128],
    DataType.FILE: ["d41d8cd98f00b204e9800998ecf8427e", "12345678-1234-1234-1234-123456789abc"],
    DataType.ASN: ["AS15169", "asn 15169", "15169", "4294967295"],
    DataType.CIDR: ["203.0.113.0/24", "203.0.113.7/24", "2001:db8::/32"],
    DataType.ISTR: ["Emotet", "CVE-2024-1234", "HKLM\\Software\\Run"],
    DataType.STR: ["Global\\Mutex", "Mozilla/5.0 (X11)", "value"],
    DataType.INT: ["42", "0", "007"],
    DataType.PORT: ["443", "65535", "1"],
    DataType.MAC: ["AA:BB:CC:DD:EE:FF", "aabb.ccdd.eeff", "aa-bb-cc-dd-ee-ff"],
    DataType.UUID: ["12345678-1234-1234-1234-123456789abc", "{12345678123412341234123456789ABC}"],
    DataType.DATE: ["2024-01-02", "20240102"],
    DataType.HEX: ["deadbeef", "DE:AD:BE:EF"],
}

# Pieces hostile to a normaliser: NULs and controls, Unicode look-alikes and spaces, IDN,
# zone IDs, %-encoding, separators of every grammar involved.
PIECES = [
    "\x00", "\x01", "\x1f", "\x7f", "\x85", "\x9f", "\t", "\r\n", "\x0b", "\x0c",
    "\u00a0", "\u2028", "\u200b", "\u3000", "\ufeff", "\u202e",
    "\u0430", "\u0435", "\u03bf", "\u0131", "\u0130", "\u212a", "\ufb01", "ß", "\uff45",
    "\uff0e", "\u3002", "\uff1a", "\uff20", "\uff0f",
    "xn--", "xn--zz", "%eth0", "%25eth0", "%1", "%", "%2e", "%00", "%41", "%2F",
    "::", ":", "[", "]", "/", "//", "?", "#", "@", "\"", "<", ">", "(", ")", ",", ";", "\\",
    ".", "..", "-", "AS", "ASN", "+", "e", "0x", "1e9", "\u0663", "\U0001d7d7", " ", "",
]  # fmt: skip
SURROGATES = ["\ud800", "\udfff", "\udbff\udc00"]


@st.composite
def hostile_values(draw: st.DrawFn, type_name: str, pieces: list[str]) -> str:
    """A seed value of the type (or arbitrary text) with hostile pieces inserted anywhere."""
    seeds = SEEDS.get(CATALOGUE[type_name].data_type, ["value"])
    value = draw(st.sampled_from(seeds) | st.text(max_size=30))
    for _ in range(draw(st.integers(0, 4))):
        piece = draw(st.sampled_from(pieces) | st.text(max_size=3))
        at = draw(st.integers(0, len(value)))
        value = value[:at] + piece + value[at:]
    casing = draw(st.sampled_from(["keep", "upper", "lower", "swapcase"]))
    return value if casing == "keep" else str(getattr(value, casing)())


def normalised_or_refused(type_name: str, value: str) -> str | None:
    """The normalised text (checked to be a fixed point), or None when refused."""
    try:
        result = normalise(type_name, value)
    except NormalisationError:
        return None
    assert isinstance(result, str)
    assert normalise(type_name, result) == result, (value, result)
    return result


@fuzz_settings(400)
@given(data=st.data(), type_name=st.sampled_from(TYPES))
def test_hostile_values_normalise_to_a_fixed_point_or_are_refused(
    data: st.DataObject, type_name: str
) -> None:
    value = data.draw(hostile_values(type_name, PIECES))
    result = normalised_or_refused(type_name, value)
    if result is None:
        with pytest.raises(NormalisationError):
            entity_id(type_name, value)
    else:
        eid = entity_id(type_name, value)
        assert ENTITY_ID_RE.fullmatch(eid)
        assert eid == entity_id(type_name, result)


@fuzz_settings(150)
@given(data=st.data(), type_name=st.sampled_from(TYPES))
def test_lone_surrogates_normalise_to_a_fixed_point_or_are_refused(
    data: st.DataObject, type_name: str
) -> None:
    normalised_or_refused(type_name, data.draw(hostile_values(type_name, SURROGATES)))


HUGE_OR_BLANK = {
    "64 KiB + 1 letters": "a" * (64 * 1024 + 1),
    "64 KiB + 2 bytes of é": "é" * (32 * 1024 + 1),
    "70,000 NULs": "\x00" * 70_000,
    "70,000 spaces": " " * 70_000,
    "whitespace only": " \t\r\n\u3000\u00a0",
    "empty": "",
    "a 70,000-label host": "a." * 35_000 + "com",
    "70,000 %-escapes": "%41" * 23_000 + ".com",
    "an IPv6 zone of 70,000 letters": "2001:db8::1%" + "e" * 70_000,
    "10,000 homoglyph labels": "ex\u0430mple." * 10_000 + "com",
}


@pytest.mark.parametrize("type_name", TYPES)
def test_huge_and_blank_values_normalise_to_a_fixed_point_or_are_refused(type_name: str) -> None:
    for value in HUGE_OR_BLANK.values():
        normalised_or_refused(type_name, value)


@pytest.mark.parametrize("type_name", TYPES)
def test_numbers_of_a_million_digits_normalise_to_a_fixed_point_or_are_refused(
    type_name: str,
) -> None:
    for value in ("9" * 1_000_000, "AS" + "9" * 1_000_000, "1" + "0" * 5000):
        normalised_or_refused(type_name, value)


def test_an_email_address_of_nested_comments_is_refused() -> None:
    with pytest.raises(NormalisationError):
        normalise("email-address", "(" * 1000 + "a@example.com")


def test_a_text_with_a_lone_surrogate_gets_an_id_or_is_refused() -> None:
    try:
        eid = entity_id("malware", "emotet\ud800")
    except NormalisationError:
        return
    assert ENTITY_ID_RE.fullmatch(eid)
