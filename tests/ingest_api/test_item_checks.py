"""The item checks never raise, whatever JSON they are given (property tests, no I/O)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.checks import (
    AssociationRequest,
    EntityRequest,
    ItemProblem,
    check_association,
    check_entity,
)
from schemas import AssociationRules
from tests.ingest_api.support import ASN, DOMAIN, IP

RULES = AssociationRules()
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(
    SCALARS | st.sampled_from([IP, ASN, DOMAIN, "ip", "domain", "203.0.113.5", "File Traffic"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "attributes",
                    "associations",
                    "ip",
                    "domain",
                    "entityID",
                    "relatedEntityID",
                    "associationType",
                    "reputation",
                    "tags",
                    "visibleBy",
                    "mode",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(JSON)
def test_checking_any_json_as_an_association_gives_a_request_or_a_problem(value: Any) -> None:
    for delete in (False, True):
        result = check_association(value, RULES, delete=delete)
        assert isinstance(result, AssociationRequest | ItemProblem)


@settings(max_examples=300)
@given(JSON)
def test_checking_any_json_as_an_entity_gives_a_request_or_a_problem(value: Any) -> None:
    result = check_entity(value, RULES)
    assert isinstance(result, EntityRequest | ItemProblem)
    if isinstance(result, ItemProblem):
        assert result.code and result.message


def test_a_valid_association_is_matched_to_its_only_type() -> None:
    result = check_association({"entityID": ASN, "relatedEntityID": IP}, RULES)
    assert result == AssociationRequest(ASN, IP, "ASN to Address")


def test_a_delete_of_a_reverse_pair_is_accepted_since_it_may_name_any_stored_edge() -> None:
    result = check_association({"entityID": IP, "relatedEntityID": ASN}, RULES, delete=True)
    assert result == AssociationRequest(IP, ASN, None)
