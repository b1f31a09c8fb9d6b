"""``schemas.stix.patterns``: equality patterns -> the observables they name; the fast parser
agrees with stix2-patterns (the OASIS parser) on every pattern it accepts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.stix.patterns import (
    Comparison,
    PatternProblem,
    _fast_observables,
    observables,
    reference_observables,
)
from tests.stix_files import FILES, objects


def _patterns() -> list[str]:
    return [
        obj["pattern"]
        for name in FILES
        for obj in objects(name)
        if isinstance(obj, dict) and obj.get("type") == "indicator"
    ]


def test_every_pattern_of_the_real_files_reads_the_same_with_both_parsers() -> None:
    patterns = _patterns()
    assert len(patterns) == 1083
    for pattern in patterns:
        fast = _fast_observables(pattern)
        assert fast is not None, pattern
        assert fast == reference_observables(pattern), pattern


def test_or_comparisons_in_one_observation_are_alternatives() -> None:
    found = observables("[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value = '198.51.100.2']")
    assert found == (
        (Comparison("ipv4-addr", ("value",), "198.51.100.1"),),
        (Comparison("ipv4-addr", ("value",), "198.51.100.2"),),
    )


def test_and_comparisons_describe_one_object_and_distribute_over_or() -> None:
    found = observables(
        "[domain-name:value = 'example.com' AND (domain-name:resolves_to_refs[*].value = "
        "'198.51.100.1' OR domain-name:resolves_to_refs[*].value = '198.51.100.2')]"
    )
    domain = Comparison("domain-name", ("value",), "example.com")
    assert found == (
        (domain, Comparison("domain-name", ("resolves_to_refs", "*", "value"), "198.51.100.1")),
        (domain, Comparison("domain-name", ("resolves_to_refs", "*", "value"), "198.51.100.2")),
    )


def test_quoted_path_steps_escapes_and_numbers_are_read() -> None:
    found = observables(
        "[file:hashes.'SHA-256' = 'ab\\'c' AND file:size = 25536] OR "
        "[autonomous-system:number = 15169]"
    )
    assert found == (
        (
            Comparison("file", ("hashes", "SHA-256"), "ab'c"),
            Comparison("file", ("size",), "25536"),
        ),
        (Comparison("autonomous-system", ("number",), "15169"),),
    )


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        ("[url:value LIKE '%.example.com/%']", "LIKE"),
        ("[file:name MATCHES '^a']", "MATCHES"),
        ("[ipv4-addr:value != '198.51.100.1']", "negated"),
        ("[ipv4-addr:value NOT = '198.51.100.1']", "negated"),
        ("[file:size > 10]", "order"),
        ("[ipv4-addr:value ISSUBSET '198.51.100.0/24']", "ISSUBSET"),
        ("[ipv4-addr:value IN ('198.51.100.1', '198.51.100.2')]", "IN"),
        ("[EXISTS file:name]", "EXISTS"),
        ("[ipv4-addr:value = '198.51.100.1'] REPEATS 5 TIMES", "qualifier"),
        ("[ipv4-addr:value = '198.51.100.1'] WITHIN 60 SECONDS", "qualifier"),
        ("[ipv4-addr:value = 'a'] FOLLOWEDBY [ipv4-addr:value = 'b']", "FOLLOWEDBY"),
    ],
)
def test_anything_but_equality_joined_by_and_or_is_too_complex(pattern: str, what: str) -> None:
    with pytest.raises(PatternProblem) as raised:
        observables(pattern)
    assert raised.value.code == "pattern_too_complex"
    assert what in raised.value.message


@pytest.mark.parametrize("pattern", ["garbage", "[a:b = 'x' and a:c = 'y']", "[a:b = 007]", ""])
def test_a_pattern_that_does_not_parse_is_invalid(pattern: str) -> None:
    with pytest.raises(PatternProblem) as raised:
        observables(pattern)
    assert raised.value.code == "invalid_pattern"


def test_parentheses_nested_beyond_any_reason_are_too_complex() -> None:
    with pytest.raises(PatternProblem) as raised:
        observables("[" + "(" * 5000 + "a:b = 'x'" + ")" * 5000 + "]")
    assert raised.value.code == "pattern_too_complex"


# Generated patterns: the fast parser accepts a pattern only when stix2-patterns reads it the
# same way, and leaves every other one to it.
_names = st.sampled_from(["ipv4-addr", "domain-name", "file", "x-custom", "a_b", "OR", "1x"])
_steps = st.sampled_from(["value", "hashes", "'SHA-256'", "[*]", "[0]", "[01]", "name", "x_ID"])
_literals = st.sampled_from(["'a'", "'it\\'s'", "'\\\\'", "15169", "-3", "007", "1.5", "true"])
_joins = st.sampled_from([" AND ", " OR ", " and ", " FOLLOWEDBY ", " "])


@st.composite
def _comparison(draw: st.DrawFn) -> str:
    path = draw(_names) + ":" + draw(st.sampled_from(["value", "hashes", "'q'"]))
    for step in draw(st.lists(_steps, max_size=3)):
        path += step if step.startswith("[") else "." + step
    return f"{path} {draw(st.sampled_from(['=', '=', '!=', 'LIKE']))} {draw(_literals)}"


@st.composite
def _pattern(draw: st.DrawFn) -> str:
    observations = []
    for _ in range(draw(st.integers(1, 3))):
        parts = draw(st.lists(_comparison(), min_size=1, max_size=3))
        inner = parts[0]
        for part in parts[1:]:
            inner += draw(_joins) + part
        if draw(st.booleans()):
            inner = f"({inner})"
        observations.append(f"[{inner}]")
    pattern = observations[0]
    for observation in observations[1:]:
        pattern += draw(_joins) + observation
    return pattern


@settings(max_examples=300, deadline=None)
@given(_pattern())
def test_the_fast_parser_never_disagrees_with_stix2_patterns(pattern: str) -> None:
    fast = _fast_observables(pattern)
    try:
        reference: object = reference_observables(pattern)
    except PatternProblem as exc:
        reference = exc.code
    if fast is not None:
        assert fast == reference
    assert observables_or_code(pattern) == reference


def observables_or_code(pattern: str) -> object:
    try:
        return observables(pattern)
    except PatternProblem as exc:
        return exc.code
