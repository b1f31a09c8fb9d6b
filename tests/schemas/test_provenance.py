"""Provenance on the wire: the plain fast path gives what the model gives, and refuses nothing
the model accepts without handing it over."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Provenance
from schemas.http import AssociationBody
from schemas.provenance import NOT_PLAIN, plain_provenance, provenance_of

IDS = {"entityID": "ip-" + "a" * 64, "relatedEntityID": "malware-" + "b" * 64}

times = st.one_of(
    st.none(),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # no offset: refused by both
    st.sampled_from(
        ["2024-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-01 00:00:00Z", "yesterday", 5]
    ),
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "source": st.one_of(st.none(), st.text(max_size=5), st.just(" x "), st.integers()),
        "confidence": st.one_of(st.none(), st.integers(-5, 105), st.booleans(), st.just("7")),
        "tlp": st.one_of(st.none(), st.sampled_from(["clear", "AMBER", "white", "pink", "red"])),
        "firstSeen": times,
        "lastSeen": times,
    },
)


@given(bodies)
@example({"firstSeen": "2024-02-01T00:00:00Z", "lastSeen": "2024-01-01T00:00:00+00:00"})
@example({"source": "feodo", "confidence": 75, "firstSeen": "2024-01-01T00:00:00.5+02:00"})
def test_the_plain_path_agrees_with_the_model(fields: dict[str, Any]) -> None:
    fast = plain_provenance({**IDS, **fields})
    if fast is NOT_PLAIN:
        return  # the model decides (and words any problem)
    try:
        body = AssociationBody.model_validate({**IDS, **fields})
    except ValidationError as exc:  # pragma: no cover - a failure of this test
        raise AssertionError(f"the plain path accepted what the model refuses: {exc}") from exc
    assert fast == provenance_of(body)


def test_plain_provenance_is_read_without_the_model() -> None:
    body = {
        **IDS,
        "source": "feodo",
        "confidence": 75,
        "tlp": "amber",
        "firstSeen": "2025-12-30T13:56:31Z",
        "lastSeen": "2026-03-12T00:00:00+00:00",
    }
    assert plain_provenance(body) == Provenance(
        source="feodo",
        confidence=75,
        tlp="amber",
        first_seen=1767102991.0,
        last_seen=1773273600.0,
    )
    assert plain_provenance(IDS) is None
