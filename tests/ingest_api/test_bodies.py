"""A large JSON-array body is parsed one item at a time, exactly as a body parsed at once."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.bodies import _array_items, _whole_array
from ingest_api.errors import ApiError

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _parsed(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", list(parse(body))
    except ApiError as exc:
        return "error", (exc.status, exc.code)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(JSON_VALUES, max_size=6), spaces=st.sampled_from(["", " ", "\n\t "]))
def test_items_parsed_one_at_a_time_equal_the_array_parsed_at_once(
    values: list[Any], spaces: str
) -> None:
    try:
        items = [orjson.dumps(v) for v in values]
    except TypeError:
        return  # an integer beyond 64 bits: orjson cannot write it, nothing to compare
    body = (spaces + "[" + spaces + ("," + spaces).join(i.decode() for i in items)).encode()
    body += (spaces + "]" + spaces).encode()

    assert _parsed(_array_items, body) == _parsed(_whole_array, body)


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2,]",
        b"[1 2]",
        b"[1, NaN]",
        b"[1, Infinity]",
        b'["\\ud800"]',
        b"[1] x",
        b"[1",
        b'[{"a": 1,}]',
        b"[\xff]",
        b"[1, 123456789012345678901234567890]",
        b"[]",
        b"  [ ]  ",
    ],
)
def test_faults_are_found_wherever_they_are_as_for_an_array_parsed_at_once(body: bytes) -> None:
    assert _parsed(_array_items, body) == _parsed(_whole_array, body)
