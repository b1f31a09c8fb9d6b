"""The association matrix: which entities may be associated, and as which type."""

from __future__ import annotations

import pytest

from schemas import (
    DEFAULT_ASSOCIATION_TYPES,
    AssociationRules,
    AssociationType,
    ContextRelationship,
    InvalidAssociationType,
    Kind,
    Rejection,
    RejectionCode,
    is_context_type,
    validate_custom_type,
)

# One entity type per kind, and an ID of each.
TYPE_OF_KIND = {
    Kind.ADDRESS: "ip",
    Kind.HOST: "domain",
    Kind.URL: "url",
    Kind.FILE: "sha256",
    Kind.EMAIL_ADDRESS: "email-address",
    Kind.ASN: "asn",
    Kind.CIDR: "cidr",
    Kind.MUTEX: "mutex",
    Kind.REGISTRY_KEY: "regkey",
    Kind.USER_AGENT: "user-agent",
}


def an_id(kind: Kind | str, digit: str = "a") -> str:
    type_name = TYPE_OF_KIND[kind] if isinstance(kind, Kind) else kind
    return f"{type_name}-{digit * 64}"


SPEC_TYPES = [
    ("Address to User Agent", Kind.ADDRESS, {Kind.USER_AGENT}, False),
    ("ASN to Address", Kind.ASN, {Kind.ADDRESS}, False),
    ("ASN to CIDR", Kind.ASN, {Kind.CIDR}, False),
    ("CIDR to Address", Kind.CIDR, {Kind.ADDRESS}, False),
    ("DNS PTR Record", Kind.ADDRESS, {Kind.HOST}, False),
    ("Domain Registrant Email", Kind.HOST, {Kind.EMAIL_ADDRESS}, False),
    ("File Download", Kind.URL, {Kind.FILE}, False),
    ("URL Host", Kind.URL, {Kind.HOST, Kind.ADDRESS}, False),
    ("File Archive", Kind.FILE, {Kind.FILE}, True),
    ("File DNS Query", Kind.FILE, {Kind.HOST}, True),
    ("File Drop", Kind.FILE, {Kind.FILE}, True),
    ("File Traffic", Kind.FILE, {Kind.ADDRESS, Kind.HOST, Kind.URL}, True),
    ("File Mutex", Kind.FILE, {Kind.MUTEX}, True),
    ("File Registry Key", Kind.FILE, {Kind.REGISTRY_KEY}, True),
    ("File User Agent", Kind.FILE, {Kind.USER_AGENT}, True),
]
EDGES = [(name, primary, related) for name, primary, kinds, _ in SPEC_TYPES for related in kinds]
RULES = AssociationRules()


def test_the_defaults_are_exactly_the_spec_tables() -> None:
    assert [
        (t.name, t.primary, set(t.non_primary), t.file_action) for t in DEFAULT_ASSOCIATION_TYPES
    ] == SPEC_TYPES
    assert not any(t.custom for t in DEFAULT_ASSOCIATION_TYPES)


@pytest.mark.parametrize(("name", "primary", "related"), EDGES)
def test_each_default_type_accepts_its_primary_to_non_primary_pair(
    name: str, primary: Kind, related: Kind
) -> None:
    matched = RULES.match(an_id(primary, "a"), an_id(related, "b"), name)
    assert isinstance(matched, AssociationType)
    assert matched.name == name


@pytest.mark.parametrize(("name", "primary", "related"), EDGES)
def test_each_default_type_refuses_the_reverse_direction(
    name: str, primary: Kind, related: Kind
) -> None:
    matched = RULES.match(an_id(related, "a"), an_id(primary, "b"), name)
    if primary is related:  # File Archive, File Drop: the reverse is the same type
        assert isinstance(matched, AssociationType)
        return
    assert isinstance(matched, Rejection)
    assert (matched.code, matched.message, matched.err_code) == (
        RejectionCode.ASSOCIATION_NOT_ALLOWED,
        "Association cannot be applied to the indicator types.",
        "0x1001",
    )
    assert matched.detail is not None
    assert matched.detail.startswith(f"{related} -> {primary}: ")
    assert f"{primary} -> {related} is " in matched.detail


def test_a_reversed_pair_says_which_direction_the_matrix_allows() -> None:
    refused = RULES.match(an_id(Kind.ADDRESS), an_id(Kind.ASN))
    assert isinstance(refused, Rejection)
    assert refused.detail == "Address -> ASN: no type allows it; ASN -> Address is ASN to Address"


def test_a_named_type_that_does_not_fit_says_what_it_joins_and_what_would_fit() -> None:
    refused = RULES.match(an_id(Kind.ASN), an_id(Kind.ADDRESS), "File Traffic")
    assert isinstance(refused, Rejection)
    assert refused.detail == (
        "ASN -> Address: 'File Traffic' is File -> Address, Host, URL; "
        "ASN -> Address is ASN to Address"
    )


def test_an_unknown_id_prefix_names_the_nearest_known_types() -> None:
    refused = RULES.match("damain-" + "0" * 64, an_id(Kind.ADDRESS))
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.INVALID_ENTITY
    assert "'damain' is an unknown entity type; did you mean domain" in refused.message


@pytest.mark.parametrize(("name", "primary", "related"), EDGES)
def test_without_a_type_name_the_only_fitting_type_is_chosen(
    name: str, primary: Kind, related: Kind
) -> None:
    fitting = sorted(t.name for t in DEFAULT_ASSOCIATION_TYPES if t.fits(primary, related))
    matched = RULES.match(an_id(primary, "a"), an_id(related, "b"))
    if len(fitting) == 1:
        assert isinstance(matched, AssociationType)
        assert matched.name == name
    else:
        assert isinstance(matched, Rejection)
        assert matched.code is RejectionCode.AMBIGUOUS_ASSOCIATION_TYPE
        assert list(matched.candidates) == fitting


def test_asn_to_address_is_allowed_but_address_to_asn_is_not() -> None:
    assert isinstance(RULES.match(an_id(Kind.ASN), an_id(Kind.ADDRESS)), AssociationType)
    refused = RULES.match(an_id(Kind.ADDRESS), an_id(Kind.ASN))
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.ASSOCIATION_NOT_ALLOWED
    assert refused.err_code == "0x1001"


def test_file_to_host_without_a_type_is_ambiguous_and_lists_the_candidates() -> None:
    matched = RULES.match(an_id(Kind.FILE), an_id(Kind.HOST))
    assert isinstance(matched, Rejection)
    assert matched.code is RejectionCode.AMBIGUOUS_ASSOCIATION_TYPE
    assert matched.candidates == ("File DNS Query", "File Traffic")
    assert "File DNS Query, File Traffic" in matched.message


def test_any_hash_type_is_a_file() -> None:
    for type_name in ("md5", "sha3-512", "file"):
        matched = RULES.match(an_id(Kind.URL), an_id(type_name))
        assert isinstance(matched, AssociationType)
        assert matched.name == "File Download"


def test_type_names_are_matched_case_insensitively() -> None:
    matched = RULES.match(an_id(Kind.FILE), an_id(Kind.HOST), "  file dns QUERY ")
    assert isinstance(matched, AssociationType)
    assert matched.name == "File DNS Query"


def test_an_entity_cannot_be_associated_with_itself() -> None:
    same = an_id(Kind.FILE)
    for type_name in (None, "File Archive", "no such type"):
        matched = RULES.match(same, same, type_name)
        assert isinstance(matched, Rejection)
        assert matched.code is RejectionCode.SELF_ASSOCIATION


def test_an_unknown_type_name_is_refused_as_unknown() -> None:
    matched = RULES.match(an_id(Kind.ASN), an_id(Kind.ADDRESS), "ASN to Everything")
    assert isinstance(matched, Rejection)
    assert matched.code is RejectionCode.UNKNOWN_ASSOCIATION_TYPE
    assert "ASN to Everything" in matched.message


def test_a_known_type_that_does_not_fit_is_not_allowed() -> None:
    matched = RULES.match(an_id(Kind.ASN), an_id(Kind.ADDRESS), "File Traffic")
    assert isinstance(matched, Rejection)
    assert matched.code is RejectionCode.ASSOCIATION_NOT_ALLOWED


# ---- context associations (SPEC §2): a type with no kind at either end -----------------------

CONTEXT_TYPES = ["malware", "malware-family", "threat", "adversary", "cve", "aso", "filename"]


@pytest.mark.parametrize("context", CONTEXT_TYPES)
@pytest.mark.parametrize("kind", list(Kind))
def test_a_context_entity_may_be_associated_with_any_kind_in_either_direction(
    context: str, kind: Kind
) -> None:
    for primary, related in ((an_id(context), an_id(kind)), (an_id(kind), an_id(context))):
        matched = RULES.match(primary, related)
        assert matched == ContextRelationship("associated")
        assert matched.context and not matched.file_action


def test_two_context_entities_may_be_associated() -> None:
    matched = RULES.match(an_id("adversary", "a"), an_id("malware", "b"), "uses")
    assert matched == ContextRelationship("uses")


def test_a_context_relationship_name_is_free_and_folded_to_lower_case() -> None:
    for given, stored in (("Indicates", "indicates"), ("  C2-of ", "c2-of"), ("", "associated")):
        assert RULES.match(an_id(Kind.ADDRESS), an_id("malware"), given) == ContextRelationship(
            stored
        )


def test_a_matrix_type_name_is_not_allowed_on_a_context_pair() -> None:
    for name in ("File Traffic", "url host", "File Mutex"):
        refused = RULES.match(an_id(Kind.FILE), an_id("malware"), name)
        assert isinstance(refused, Rejection)
        assert (refused.code, refused.err_code) == (RejectionCode.ASSOCIATION_NOT_ALLOWED, "0x1001")
        assert refused.detail is not None
        assert refused.detail.startswith("File -> malware (a type of no kind): '")
        assert "a matrix type, cannot name an association with a context entity" in refused.detail


def test_a_matrix_type_name_on_a_context_pair_is_explained_in_every_way_of_matching() -> None:
    nested = RULES.match_nested(an_id("malware"), an_id(Kind.HOST), "DNS PTR Record")
    typed = RULES.match_types("domain", "threat", "DNS PTR Record")
    assert isinstance(nested, Rejection) and isinstance(typed, Rejection)
    assert nested.detail == (
        "malware (a type of no kind) -> Host: 'DNS PTR Record' is Address -> Host, a matrix "
        "type, cannot name an association with a context entity; give another relationship "
        "name, or none for 'associated'"
    )
    assert typed.detail is not None and typed.detail.startswith("Host -> threat (a type of no ")


def test_a_custom_type_name_is_not_allowed_on_a_context_pair_either() -> None:
    rules = AssociationRules([_custom("Seen On")])
    refused = rules.match(an_id("malware"), an_id(Kind.HOST), "seen on")
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.ASSOCIATION_NOT_ALLOWED
    assert RULES.match(an_id("malware"), an_id(Kind.HOST), "seen on") == ContextRelationship(
        "seen on"
    )


def test_an_unusable_relationship_name_is_refused() -> None:
    for name in ("x" * 129, "tab\there"):
        refused = RULES.match(an_id("malware"), an_id(Kind.HOST), name)
        assert isinstance(refused, Rejection)
        assert refused.code is RejectionCode.UNKNOWN_ASSOCIATION_TYPE


def test_a_context_entity_cannot_be_associated_with_itself() -> None:
    same = an_id("malware")
    assert RULES.match(same, same) == Rejection(
        RejectionCode.SELF_ASSOCIATION, "An entity cannot be associated with itself."
    )
    assert isinstance(RULES.match_nested(same, same), Rejection)


def test_kinded_pairs_still_follow_the_matrix_next_to_context_pairs() -> None:
    refused = RULES.match(an_id(Kind.ADDRESS), an_id(Kind.ASN), "indicates")
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.UNKNOWN_ASSOCIATION_TYPE
    refused = RULES.match(an_id(Kind.ADDRESS), an_id(Kind.ASN))
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.ASSOCIATION_NOT_ALLOWED


def test_a_nested_context_child_keeps_the_direction_given() -> None:
    ip, malware = an_id(Kind.ADDRESS, "a"), an_id("malware", "b")
    assert RULES.match_nested(ip, malware, "C2-of") == (ContextRelationship("c2-of"), ip, malware)
    assert RULES.match_nested(malware, ip) == (ContextRelationship("associated"), malware, ip)
    refused = RULES.match_nested(malware, ip, "DNS PTR Record")
    assert isinstance(refused, Rejection)
    assert refused.err_code == "0x1001"


def test_match_types_decides_a_pair_of_type_names_as_match_decides_ids() -> None:
    assert RULES.match_types("ip", "malware", "c2-of") == ContextRelationship("c2-of")
    assert RULES.match_types("asn", "ip") == RULES.get("ASN to Address")
    refused = RULES.match_types("ip", "asn")
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.ASSOCIATION_NOT_ALLOWED
    unknown = RULES.match_types("spaceship", "ip")
    assert isinstance(unknown, Rejection)
    assert unknown.code is RejectionCode.INVALID_ENTITY


def test_only_kind_less_types_are_context_types() -> None:
    assert is_context_type("malware") and is_context_type("cve")
    assert not is_context_type("ip") and not is_context_type("spaceship")


def test_a_malformed_id_is_an_invalid_entity() -> None:
    matched = RULES.match("ip-123", an_id(Kind.ASN))
    assert isinstance(matched, Rejection)
    assert matched.code is RejectionCode.INVALID_ENTITY


def test_nested_children_match_in_either_orientation() -> None:
    address, asn = an_id(Kind.ADDRESS, "a"), an_id(Kind.ASN, "b")
    assert RULES.match_nested(address, asn) == (RULES.get("ASN to Address"), asn, address)
    assert RULES.match_nested(asn, address) == (RULES.get("ASN to Address"), asn, address)


def test_a_nested_child_of_the_same_kind_keeps_the_parent_primary() -> None:
    parent, child = an_id(Kind.FILE, "a"), an_id(Kind.FILE, "b")
    assert RULES.match_nested(parent, child, "File Drop") == (RULES.get("File Drop"), parent, child)


def test_a_named_nested_type_is_oriented_to_fit() -> None:
    host, file = an_id(Kind.HOST, "a"), an_id(Kind.FILE, "b")
    assert RULES.match_nested(host, file, "File DNS Query") == (
        RULES.get("File DNS Query"),
        file,
        host,
    )
    refused = RULES.match_nested(host, file, "ASN to CIDR")
    assert isinstance(refused, Rejection)
    assert refused.code is RejectionCode.ASSOCIATION_NOT_ALLOWED


def test_a_nested_pair_fitting_both_orientations_keeps_the_parent_primary() -> None:
    reverse_ptr = AssociationType("Host Resolves", Kind.HOST, frozenset({Kind.ADDRESS}), False)
    rules = AssociationRules([reverse_ptr])
    address, host = an_id(Kind.ADDRESS, "a"), an_id(Kind.HOST, "b")
    assert rules.match_nested(address, host) == (rules.get("DNS PTR Record"), address, host)
    assert rules.match_nested(host, address) == (rules.get("Host Resolves"), host, address)


def test_a_url_with_a_nested_file_is_a_file_download() -> None:
    url, file = an_id(Kind.URL, "a"), an_id(Kind.FILE, "b")
    assert RULES.match_nested(url, file) == (RULES.get("File Download"), url, file)
    # File -> URL fits File Traffic only: a file with a nested URL keeps the file primary.
    assert RULES.match_nested(file, url) == (RULES.get("File Traffic"), file, url)


def test_several_fits_in_the_same_orientation_are_ambiguous() -> None:
    file, host = an_id(Kind.FILE, "a"), an_id(Kind.HOST, "b")
    matched = RULES.match_nested(file, host)
    assert isinstance(matched, Rejection)
    assert matched.code is RejectionCode.AMBIGUOUS_ASSOCIATION_TYPE
    assert matched.candidates == ("File DNS Query", "File Traffic")
    # A host with a nested file: nothing fits Host -> File, so File -> Host decides, ambiguous.
    assert isinstance(RULES.match_nested(host, file), Rejection)


def _custom(name: str = "Mutex Seen On Host") -> AssociationType:
    return validate_custom_type(name, "mutex", ["Host"], False, RULES)


def test_a_custom_type_is_matched_like_a_default() -> None:
    custom = _custom()
    assert custom.custom
    assert custom.primary is Kind.MUTEX
    rules = AssociationRules([custom])
    assert rules.types[-1] is custom
    assert rules.match(an_id(Kind.MUTEX), an_id(Kind.HOST)) == custom
    assert rules.get("mutex seen on host") == custom
    assert isinstance(RULES.match(an_id(Kind.MUTEX), an_id(Kind.HOST)), Rejection)


def test_a_custom_file_action_can_make_a_pair_ambiguous() -> None:
    action = validate_custom_type("File Beacon", Kind.FILE, [Kind.HOST], True, RULES)
    matched = AssociationRules([action]).match(an_id(Kind.FILE), an_id(Kind.HOST))
    assert isinstance(matched, Rejection)
    assert matched.candidates == ("File Beacon", "File DNS Query", "File Traffic")


@pytest.mark.parametrize(
    ("name", "primary", "non_primary", "file_action", "reason"),
    [
        ("", "File", ["Host"], False, "1 to 128"),
        ("   ", "File", ["Host"], False, "1 to 128"),
        ("x" * 129, "File", ["Host"], False, "1 to 128"),
        ("bad\nname", "File", ["Host"], False, "control"),
        ("file traffic", "File", ["Host"], False, "already exists"),
        ("New", "Planet", ["Host"], False, "not a kind"),
        ("New", "File", ["Host", "Moon"], False, "not a kind"),
        ("New", "File", [], False, "at least one"),
        ("New", "Host", ["File"], True, "primary kind File"),
        (" Associated ", "File", ["Host"], False, "default relationship of context"),
    ],
)
def test_invalid_custom_types_are_refused(
    name: str, primary: str, non_primary: list[str], file_action: bool, reason: str
) -> None:
    with pytest.raises(InvalidAssociationType, match=reason):
        validate_custom_type(name, primary, non_primary, file_action, RULES)


def test_a_custom_name_is_trimmed_and_unique_against_customs_too() -> None:
    custom = _custom("  Spaced Out  ")
    assert custom.name == "Spaced Out"
    with pytest.raises(InvalidAssociationType, match="already exists"):
        validate_custom_type("SPACED OUT", "File", ["Host"], False, AssociationRules([custom]))


def test_rules_refuse_two_types_with_the_same_name() -> None:
    twin = AssociationType("url host", Kind.URL, frozenset({Kind.FILE}), False, custom=True)
    with pytest.raises(InvalidAssociationType):
        AssociationRules([twin])


def test_association_types_take_kind_names_as_text() -> None:
    made = AssociationType("T", "ASN", frozenset({"CIDR"}), False)  # type: ignore[arg-type]
    assert made.primary is Kind.ASN
    assert made.non_primary == {Kind.CIDR}
    with pytest.raises(ValueError):
        AssociationType("T", "Planet", frozenset(), False)  # type: ignore[arg-type]
