"""Properties of normalisation and IDs that hold for every value (hypothesis)."""

from __future__ import annotations

import random
import re

from hypothesis import assume, given
from hypothesis import strategies as st

from schemas import CATALOGUE, DataType, NormalisationError, entity_id, normalise

ID_SHAPE = re.compile(r"^[a-z0-9-]+-[0-9a-f]{64}$")

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_label = st.text(_LETTERS + "0123456789", min_size=1, max_size=12)
_host = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=4),
    st.text(_LETTERS, min_size=2, max_size=6),
)
_hex_digits = st.text("0123456789abcdefABCDEF", min_size=1, max_size=140)

# Values that are often valid for each data type; arbitrary text is mixed in for every one.
VALUES: dict[DataType, st.SearchStrategy[str]] = {
    DataType.IP: st.ip_addresses().map(str),
    DataType.FQDN: _host,
    DataType.URL: st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["http", "HTTPS", "ftp"]),
        _host,
        st.text(max_size=20).filter(lambda p: p.isprintable()),
    ),
    DataType.EMAIL: st.builds(lambda local, host: f"{local}@{host}", _label, _host),
    DataType.HASH: _hex_digits,
    DataType.FILE: st.one_of(_hex_digits, st.uuids().map(str)),
    DataType.ASN: st.builds(
        lambda prefix, n: f"{prefix}{n}",
        st.sampled_from(["", "AS", "asn", "As "]),
        st.integers(0, 2**32),
    ),
    DataType.CIDR: st.one_of(
        st.ip_addresses(v=4).map(lambda a: f"{a}/{int(a) % 33}"),
        st.ip_addresses(v=6).map(lambda a: f"{a}/{int(a) % 129}"),
    ),
    DataType.ISTR: st.text(),
    DataType.STR: st.text(),
    DataType.INT: st.integers(-5, 10**12).map(str),
    DataType.PORT: st.integers(-5, 70000).map(str),
    DataType.MAC: st.binary(min_size=6, max_size=6).map(lambda b: b.hex("-")),
    DataType.UUID: st.uuids().map(lambda u: u.hex),
    DataType.DATE: st.dates().map(lambda d: d.isoformat()),
    DataType.HEX: _hex_digits,
}

# Types whose values are compared without regard to case.
CASE_INSENSITIVE = [
    DataType.FQDN,
    DataType.EMAIL,
    DataType.HASH,
    DataType.FILE,
    DataType.ASN,
    DataType.ISTR,
    DataType.MAC,
    DataType.UUID,
    DataType.HEX,
]


def _one_type_per_data_type() -> dict[DataType, str]:
    found: dict[DataType, str] = {}
    for name, row in CATALOGUE.items():
        found.setdefault(row.data_type, name)
    return found


TYPE_OF = _one_type_per_data_type()


@st.composite
def typed_values(draw: st.DrawFn, data_types: list[DataType] | None = None) -> tuple[str, str]:
    data_type = draw(st.sampled_from(data_types or list(DataType)))
    type_name = TYPE_OF[data_type]
    if data_type is DataType.HASH:
        type_name = draw(st.sampled_from([n for n, r in CATALOGUE.items() if r.hex_length]))
    value = draw(st.one_of(VALUES[data_type], VALUES[data_type], st.text()))
    return type_name, value


def _normalised(type_name: str, value: str) -> str:
    try:
        return normalise(type_name, value)
    except NormalisationError:
        assume(False)
        raise


@given(typed_values())
def test_normalising_twice_is_normalising_once(typed: tuple[str, str]) -> None:
    type_name, value = typed
    once = _normalised(type_name, value)
    assert normalise(type_name, once) == once


@given(typed_values(), st.sampled_from([" ", "\t", "\n", "  \r\n"]))
def test_whitespace_around_a_value_does_not_change_its_id(typed: tuple[str, str], pad: str) -> None:
    type_name, value = typed
    expected = entity_id(type_name, _normalised(type_name, value))
    assert entity_id(type_name, f"{pad}{value}{pad}") == expected


@given(typed_values(CASE_INSENSITIVE), st.randoms(use_true_random=False))
def test_case_variants_of_case_insensitive_values_share_an_id(
    typed: tuple[str, str], rnd: random.Random
) -> None:
    type_name, value = typed
    canonical = _normalised(type_name, value)
    assume(canonical.upper().lower() == canonical)  # letters whose case round-trips
    variant = "".join(c.upper() if rnd.random() < 0.5 else c for c in canonical)
    assert entity_id(type_name, variant) == entity_id(type_name, canonical)


@given(typed_values())
def test_every_id_has_the_entity_id_shape(typed: tuple[str, str]) -> None:
    type_name, value = typed
    _normalised(type_name, value)
    assert ID_SHAPE.match(entity_id(type_name, value))


@given(st.text(min_size=1))
def test_str_values_keep_their_case(value: str) -> None:
    try:
        normalised = normalise("value", value)
    except NormalisationError:
        assume(False)
    assert normalised.strip() == normalised
    assert normalised.lower() == normalise("text", value)
