"""The queue envelope round-trips what the front publishes to what the workers read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    AssociationItem,
    AssociationMessage,
    EntityItem,
    EntityLink,
    EntityMessage,
    EntityRecord,
    MessageKind,
    decode_message,
    encode_envelope,
    encode_item,
    entity_id,
    new_job_id,
)
from schemas.messages import TLP_MARKINGS, AssociationItemEncoder, Provenance

META = {"index": 0, "total": 2, "user": "alice", "groups": ("red",), "submitted_at": 1.5}


def test_association_items_round_trip_through_an_envelope() -> None:
    job = new_job_id()
    items = [
        AssociationItem(job=job, **META, entity_id="asn-" + "a" * 64, related_id="ip-" + "b" * 64),
        AssociationItem(
            job=job,
            **{**META, "index": 1},
            entity_id="sha256-" + "c" * 64,
            related_id="domain-" + "d" * 64,
            association_type="File DNS Query",
        ),
    ]
    body = encode_envelope(MessageKind.ASSOCIATION, [encode_item(item) for item in items])
    decoded = decode_message(body)
    assert isinstance(decoded, AssociationMessage)
    assert decoded.kind is MessageKind.ASSOCIATION
    assert list(decoded.items) == items


def test_entity_items_round_trip_with_children_and_links() -> None:
    parent = EntityRecord(
        id=entity_id("domain", "example.com"),
        type="domain",
        attributes={"domain": "example.com", "note": ["x", 1]},
        reputation=-1,
        tags=("c2",),
    )
    child = EntityRecord(id=entity_id("ip", "8.8.8.8"), type="ip", attributes={"ip": "8.8.8.8"})
    item = EntityItem(
        job=new_job_id(),
        **META,
        entity=parent,
        children=(child,),
        links=(
            EntityLink(entity_id=child.id, related_id=parent.id, association_type="DNS PTR Record"),
        ),
    )
    decoded = decode_message(encode_envelope(MessageKind.ENTITY, [encode_item(item)]))
    assert isinstance(decoded, EntityMessage)
    assert decoded.items == (item,)


def test_a_delete_envelope_keeps_its_kind() -> None:
    item = AssociationItem(job=new_job_id(), **META, entity_id="a", related_id="b")
    decoded = decode_message(encode_envelope(MessageKind.ASSOCIATION_DELETE, [encode_item(item)]))
    assert decoded.kind is MessageKind.ASSOCIATION_DELETE


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"v":2,"kind":"association","items":[]}',
        b'{"v":1,"kind":"nope","items":[]}',
        b'{"v":1,"kind":"entity","items":[{"job":"j"}]}',
    ],
)
def test_bodies_that_are_not_envelopes_are_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_message(body)


provenances = st.none() | st.builds(
    Provenance,
    source=st.none() | st.text(max_size=20),
    confidence=st.none() | st.integers(min_value=0, max_value=100),
    tlp=st.none() | st.sampled_from(TLP_MARKINGS),
    first_seen=st.none() | st.floats(min_value=0, max_value=4e9, allow_nan=False),
    last_seen=st.none() | st.floats(min_value=0, max_value=4e9, allow_nan=False),
)


@given(
    user=st.text(max_size=20),
    groups=st.lists(st.text(max_size=10), max_size=3),
    type_name=st.none() | st.text(max_size=30),
    index=st.integers(min_value=0, max_value=10_000),
    submitted_at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    provenance=provenances,
)
def test_the_template_encoder_gives_what_the_model_gives(
    user: str,
    groups: list[str],
    type_name: str | None,
    index: int,
    submitted_at: float,
    provenance: Provenance | None,
) -> None:
    entity, related = "asn-" + "a" * 64, "ip-" + "b" * 64
    encoder = AssociationItemEncoder(
        job="job-1", total=10_001, user=user, groups=groups, submitted_at=submitted_at
    )
    fast = encoder.encode(index, entity, related, type_name, provenance)
    model = AssociationItem(
        job="job-1",
        index=index,
        total=10_001,
        user=user,
        groups=tuple(groups),
        submitted_at=submitted_at,
        entity_id=entity,
        related_id=related,
        association_type=type_name,
        provenance=provenance,
    )

    assert AssociationItem.model_validate_json(fast) == model
    assert decode_message(encode_envelope(MessageKind.ASSOCIATION, [fast])).items == (model,)
    again = encoder.encode(index, entity, related, type_name, provenance)  # from the caches
    assert again == fast


@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.none() | st.sampled_from(["ASN to Address", "indicates", 'quote " and \\']),
            provenances,
        ),
        max_size=12,
    )
)
def test_a_bulk_encoded_at_once_is_encoded_as_item_by_item(
    rows: list[tuple[int, str | None, Provenance | None]],
) -> None:
    entity, related = "asn-" + "a" * 64, "ip-" + "b" * 64
    items = [(index, entity, related, name, provenance) for index, name, provenance in rows]
    shared = Provenance(source="feed-a", confidence=5)
    items += [(n, entity, related, "ASN to Address", shared) for n in range(3)]  # one value, many
    one_by_one = AssociationItemEncoder(
        job="job-1", total=5, user="u", groups=["g"], submitted_at=1.5
    )
    at_once = AssociationItemEncoder(job="job-1", total=5, user="u", groups=["g"], submitted_at=1.5)
    assert at_once.encode_many(items) == [one_by_one.encode(*item) for item in items]
