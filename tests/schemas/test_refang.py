"""Defanged values, as feeds write them, get the ID of the plain value; tags fold by case."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import NormalisationError, entity_id, fold_tags, normalise, refang

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_label = st.text(_LETTERS + "0123456789", min_size=1, max_size=10)
_host = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=4),
    st.text(_LETTERS, min_size=2, max_size=6),
)
_DOTS = ["[.]", "(.)", "{.}", "[dot]", "[DOT]", "."]
_ATS = ["[@]", "[at]", "[AT]", "@"]


def _defang(text: str, rnd: random.Random) -> str:
    text = "".join(rnd.choice(_DOTS) if c == "." else c for c in text)
    return "".join(rnd.choice(_ATS) if c == "@" else c for c in text)


@given(_host, st.randoms(use_true_random=False))
def test_a_defanged_host_name_has_the_id_of_the_plain_one(host: str, rnd: random.Random) -> None:
    assert entity_id("domain", _defang(host, rnd)) == entity_id("domain", host)


@given(st.ip_addresses(v=4), st.randoms(use_true_random=False))
def test_a_defanged_address_has_the_id_of_the_plain_one(
    address: object, rnd: random.Random
) -> None:
    plain = str(address)
    try:
        expected = entity_id("ip", plain)
    except NormalisationError:
        return  # private and reserved addresses are refused either way
    assert entity_id("ip", _defang(plain, rnd)) == expected


@given(
    st.sampled_from(["http", "https"]),
    _host,
    st.text(_LETTERS + "/[].()", max_size=12),
    st.randoms(use_true_random=False),
)
def test_a_defanged_url_has_the_id_of_the_plain_one_and_keeps_its_path(
    scheme: str, host: str, path: str, rnd: random.Random
) -> None:
    plain = f"{scheme}://{host}/{path}"
    scheme_written = rnd.choice(
        [scheme, scheme.replace("tt", "xx"), scheme.upper().replace("TT", "XX")]
    )
    separator = rnd.choice(["://", "[:]//"])
    defanged = f"{scheme_written}{separator}{_defang(host, rnd)}/{path}"
    assert normalise("url", defanged) == normalise("url", plain)
    assert normalise("url", defanged).endswith("/" + path)


@given(_label, _host, st.randoms(use_true_random=False))
def test_a_defanged_email_address_has_the_id_of_the_plain_one(
    local: str, host: str, rnd: random.Random
) -> None:
    plain = f"{local}@{host}"
    assert entity_id("email-address", _defang(plain, rnd)) == entity_id("email-address", plain)


def test_text_types_are_not_refanged() -> None:
    assert normalise("value", "evil[.]example") == "evil[.]example"
    assert normalise("malware", "hxxp://x") == "hxxp://x"


def test_a_mark_inside_a_mark_is_refused_rather_than_refanged_halfway() -> None:
    with pytest.raises(NormalisationError, match="defanged twice"):
        normalise("email-address", "bob[[at]]evil.example")


@given(st.text(max_size=40))
def test_refanging_a_refanged_value_changes_nothing(text: str) -> None:
    try:
        once = refang(text)
    except Exception:
        return
    assert refang(once) == once


def test_tags_are_kept_once_each_compared_without_case() -> None:
    assert fold_tags(["BianLian", "Bianlian", " c2 ", "C2", "", "bianlian"]) == ("BianLian", "c2")


@given(st.lists(st.text(max_size=8)))
def test_folded_tags_are_unique_without_case_and_cover_every_tag(tags: list[str]) -> None:
    folded = fold_tags(tags)
    assert len({tag.lower() for tag in folded}) == len(folded)
    assert {t.strip().lower() for t in tags if t.strip()} == {t.lower() for t in folded}
    assert fold_tags(folded) == folded
