"""A bulk of associations checked a chunk at a time answers, item by item, exactly what
``check_association`` answers for each item alone (property tests, no I/O)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_api.bulk_checks import AssociationChunkChecker
from ingest_api.checks import ItemProblem, check_association
from schemas import AssociationRules, AssociationType, entity_id
from schemas.catalogue import Kind
from tests.ingest_api.support import ASN, DOMAIN, FILE, IP, IP_2, MALWARE, URL

RULES = AssociationRules()
CUSTOM_RULES = AssociationRules(
    [AssociationType("Host Beacon", Kind.HOST, frozenset({Kind.ADDRESS}), False, custom=True)]
)
THREAT = entity_id("threat", "apt-x")

IDS = (
    st.sampled_from(
        [
            ASN,
            IP,
            IP_2,
            DOMAIN,
            URL,
            FILE,
            MALWARE,
            THREAT,
            ASN.upper(),  # uppercase hex: not an ID
            ASN[:-1] + "g",  # a hex digit that is none
            ASN[:-1],  # 63 hex digits
            "nosuchtype-" + "a" * 64,
            "ip_" + "a" * 64,
            "ip-" + "a" * 63 + "\u0663",  # a digit of another script
            "ip-" + "a" * 63 + "\ud800",  # a lone surrogate
            "",
            "x" * 300,
        ]
    )
    | st.text(max_size=80)
)
NAMES = st.sampled_from(
    [
        "ASN to Address",
        "asn to address",
        "  URL Host ",
        "File Traffic",
        "file dns query",
        "Host Beacon",
        "No Such Type",
        "indicates",
        "Associated",
        "",
        "   ",
        "bad\x00name",
        "n" * 129,
        "n" * 300,
    ]
) | st.text(max_size=20)
PROVENANCE = {
    "source": st.sampled_from(["feed-a", " padded ", "", "s" * 300, "ctl\x01"]) | st.integers(),
    "confidence": st.sampled_from([0, 50, 100, 101, -1, True, 50.0, "50", None]),
    "tlp": st.sampled_from(["clear", "amber+strict", "AMBER", "white", None, 1]),
    "firstSeen": st.sampled_from(
        ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05+02:00", "2024-01-02", 1700000000, None]
    ),
    "lastSeen": st.sampled_from(
        ["2024-01-03T03:04:05Z", "2023-01-01T00:00:00Z", 1700000000.5, None, ["x"]]
    ),
}


@st.composite
def items(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.none() | st.integers() | st.text(max_size=5) | st.lists(IDS, max_size=2))
    value: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        value["entityID"] = draw(IDS)
    if draw(st.integers(0, 9)):
        value["relatedEntityID"] = draw(IDS | st.integers() | st.none())
    if draw(st.booleans()):
        value["associationType"] = draw(NAMES | st.none() | st.integers())
    for field, values in PROVENANCE.items():
        if draw(st.integers(0, 4)) == 0:
            value[field] = draw(values)
    if draw(st.integers(0, 19)) == 0:
        value["extra"] = 1
    return value


def one_by_one(values: list[Any], rules: AssociationRules, delete: bool) -> list[Any]:
    answers: list[Any] = []
    for index, value in enumerate(values):
        checked = check_association(value, rules, delete=delete)
        if isinstance(checked, ItemProblem):
            answers.append((index, checked))
        else:
            answers.append(
                (
                    index,
                    checked.entity_id,
                    checked.related_id,
                    checked.association_type,
                    checked.provenance,
                )
            )
    return answers


def by_chunks(values: list[Any], rules: AssociationRules, delete: bool) -> list[Any]:
    checker = AssociationChunkChecker(rules, delete=delete)
    answers: list[Any] = []
    for start in range(0, len(values), 7):
        chunk = list(enumerate(values))[start : start + 7]
        valid, refused = checker.check(chunk)
        assert [i for i, *_ in valid] == sorted(i for i, *_ in valid)
        assert [i for i, _ in refused] == sorted(i for i, _ in refused)
        answers += valid
        answers += refused
    return sorted(answers, key=lambda answer: answer[0])


@settings(max_examples=400)
@given(
    values=st.lists(items(), max_size=30),
    delete=st.booleans(),
    custom=st.booleans(),
)
def test_checking_a_bulk_by_chunks_answers_what_each_item_alone_answers(
    values: list[Any], delete: bool, custom: bool
) -> None:
    rules = CUSTOM_RULES if custom else RULES
    expected = one_by_one(values, rules, delete)
    assert by_chunks(values, rules, delete) == expected
    assert by_chunks(values, rules, delete) == expected  # again, from what was kept


def test_a_well_formed_bulk_is_answered_from_one_decision_per_pair_of_types() -> None:
    values = [
        {"entityID": ASN, "relatedEntityID": entity_id("ip", f"203.0.113.{n}")} for n in range(50)
    ]
    values.append({"entityID": IP, "relatedEntityID": ASN})  # the wrong way round
    values.append({"entityID": URL, "relatedEntityID": DOMAIN, "source": "feed-a", "tlp": "red"})
    valid, refused = AssociationChunkChecker(RULES).check(list(enumerate(values)))
    assert [(i, t) for i, _, _, t, _ in valid][:2] == [(0, "ASN to Address"), (1, "ASN to Address")]
    assert len(valid) == 51
    assert valid[-1][4] is not None and valid[-1][4].source == "feed-a"
    ((index, problem),) = refused
    assert index == 50
    assert problem == check_association(values[50], RULES)


def test_one_malformed_id_in_a_chunk_is_named_while_the_others_are_accepted() -> None:
    values = [
        {"entityID": ASN, "relatedEntityID": IP},
        {"entityID": ASN, "relatedEntityID": "ip-" + "A" * 64},
        {"entityID": ASN, "relatedEntityID": IP_2},
    ]
    valid, refused = AssociationChunkChecker(RULES).check(list(enumerate(values)))
    assert [i for i, *_ in valid] == [0, 2]
    ((index, problem),) = refused
    assert (index, problem.code) == (1, "invalid_entity_id")
    assert problem.message.startswith("relatedEntityID: ")
