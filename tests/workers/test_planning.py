"""``workers.planning``: the pure decisions a worker takes for one message (SPEC §2, §4)."""

from __future__ import annotations

import time

import pytest

from schemas import AssociationRules, AssociationType, Kind, Provenance, association_id
from schemas.messages import AssociationMessage, EntityMessage, MessageKind, decode_message
from tests.workers.factories import (
    ADDRESS,
    ASN,
    FAMILY,
    FILE,
    HOST,
    URL,
    association,
    associations,
    deletes,
    eid,
    entities,
    entity,
)
from workers.planning import failed_items_batch, needed_entity_ids, plan_message, retry_delay
from workers.store.records import Outcome, SourceEntry

RULES = AssociationRules()
NOW = 1_750_000_000.0
EVERYTHING = {eid(e) for e in (ASN, ADDRESS, HOST, FILE, URL)}


def decoded(body: bytes) -> AssociationMessage | EntityMessage:
    return decode_message(body)


def test_an_allowed_association_between_existing_entities_becomes_one_edge_write() -> None:
    item = association(ASN, ADDRESS, job="j1", submitted_at=NOW - 1)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [edge] = plan.batch.edges
    assert edge.key == ("j1", 0)
    assert edge.association_id == association_id(eid(ASN), eid(ADDRESS))
    assert (edge.entity_id, edge.related_id) == (eid(ASN), eid(ADDRESS))
    assert (edge.entity_type, edge.related_type) == ("asn", "ip")
    assert edge.association_type == "ASN to Address"
    assert edge.file_action is False
    assert edge.created_by == "alice"
    assert plan.batch.preset == [] and plan.pending == ()


def test_the_job_header_comes_from_the_item_meta() -> None:
    item = association(ASN, ADDRESS, job="j1", total=3, user="bob", submitted_at=NOW - 5)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [header] = plan.batch.jobs
    assert (header.job_id, header.kind, header.owner) == ("j1", "association", "bob")
    assert (header.groups, header.total, header.created_at) == (("analysts",), 3, NOW - 5)


def test_the_reverse_direction_is_rejected_with_threatconnects_code() -> None:
    item = association(ADDRESS, ASN, submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [preset] = plan.batch.preset
    assert preset.outcome == Outcome.REJECTED
    assert preset.code == "association_not_allowed"
    assert preset.message is not None and "0x1001" in preset.message
    assert plan.batch.edges == []
    assert plan.rejections == {"association_not_allowed": 1}


def test_file_to_host_without_a_type_is_ambiguous_and_with_file_traffic_is_a_file_action() -> None:
    ambiguous = association(FILE, HOST, index=0, total=2, job="j", submitted_at=NOW)
    named = association(FILE, HOST, "File Traffic", index=1, total=2, job="j", submitted_at=NOW)
    plan = plan_message(decoded(associations(ambiguous, named)), RULES, EVERYTHING, NOW, 120)

    [preset] = plan.batch.preset
    assert (preset.key, preset.code) == (("j", 0), "ambiguous_association_type")
    [edge] = plan.batch.edges
    assert (edge.key, edge.association_type, edge.file_action) == (("j", 1), "File Traffic", True)


def test_type_names_match_in_any_case_and_are_stored_in_their_canonical_spelling() -> None:
    item = association(FILE, HOST, "file traffic", submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    assert [edge.association_type for edge in plan.batch.edges] == ["File Traffic"]


@pytest.mark.parametrize(
    ("entity", "related", "type_name", "code"),
    [
        (ASN, ADDRESS, "No Such Type", "unknown_association_type"),
        (ADDRESS, ADDRESS, None, "self_association"),
        (URL, ASN, None, "association_not_allowed"),
    ],
)
def test_rule_violations_are_rejected_at_once(
    entity: tuple[str, str], related: tuple[str, str], type_name: str | None, code: str
) -> None:
    item = association(entity, related, type_name, submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    assert [(p.outcome, p.code) for p in plan.batch.preset] == [(Outcome.REJECTED, code)]


def test_a_rule_violation_is_rejected_even_while_its_entities_are_missing() -> None:
    item = association(ADDRESS, ASN, submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, set(), NOW, 120)

    assert [p.code for p in plan.batch.preset] == ["association_not_allowed"]
    assert plan.pending == ()


def test_an_item_whose_entity_is_missing_waits_without_being_written() -> None:
    waiting = association(ASN, ADDRESS, job="j", index=0, total=2, submitted_at=NOW - 10)
    ready = association(FILE, HOST, "File DNS Query", job="j", index=1, total=2, submitted_at=NOW)
    known = EVERYTHING - {eid(ADDRESS)}
    plan = plan_message(decoded(associations(waiting, ready)), RULES, known, NOW, 120)

    assert plan.pending == (waiting,)
    assert [edge.key for edge in plan.batch.edges] == [("j", 1)]
    assert plan.batch.preset == []


def test_a_waiting_item_is_recorded_as_waiting_for_its_missing_entities_with_its_job() -> None:
    item = association(ASN, ADDRESS, job="j", submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, {eid(ASN)}, NOW, 120)

    assert plan.batch.edges == [] and plan.batch.preset == []
    [waiting] = plan.batch.waiting
    assert (waiting.key, waiting.entity_ids, waiting.since) == (("j", 0), (eid(ADDRESS),), NOW)
    assert [job.job_id for job in plan.batch.jobs] == ["j"]
    assert plan.pending == (item,)
    assert plan.waiting_since == NOW
    assert not plan.batch.clears_waiting
    assert not plan.wait_over


def test_a_backlogged_item_waits_on_its_first_look_however_long_ago_it_was_submitted() -> None:
    item = association(ASN, ADDRESS, submitted_at=NOW - 3600)
    plan = plan_message(decoded(associations(item)), RULES, set(), NOW, 120)

    assert plan.batch.preset == []
    assert plan.pending == (item,)
    assert plan.waiting_since == NOW


def test_a_retried_item_keeps_waiting_from_when_it_was_first_found_missing() -> None:
    item = association(ASN, ADDRESS, submitted_at=NOW - 3600)
    plan = plan_message(decoded(associations(item)), RULES, set(), NOW, 120, NOW - 100)

    assert plan.pending == (item,)
    [waiting] = plan.batch.waiting
    assert (waiting.since, plan.waiting_since) == (NOW - 100, NOW - 100)
    assert waiting.entity_ids == (eid(ASN), eid(ADDRESS))
    assert plan.batch.clears_waiting


def test_when_the_wait_is_over_an_item_gets_a_last_look_before_it_is_rejected() -> None:
    item = association(ASN, ADDRESS, submitted_at=NOW - 1)
    plan = plan_message(decoded(associations(item)), RULES, {eid(ASN)}, NOW, 120, NOW - 121)

    assert plan.batch.preset == []
    assert plan.pending == (item,)
    assert plan.wait_over


def test_at_its_last_look_a_missing_entity_is_rejected_naming_it() -> None:
    item = association(ASN, ADDRESS, submitted_at=NOW - 1)
    plan = plan_message(
        decoded(associations(item)), RULES, {eid(ASN)}, NOW, 120, NOW - 121, last_call=True
    )

    [preset] = plan.batch.preset
    assert preset.code == "entity_not_found"
    assert preset.message is not None and eid(ADDRESS) in preset.message
    assert eid(ASN) not in preset.message
    assert plan.pending == ()
    assert plan.batch.waiting == []


def test_an_invalid_entity_id_is_rejected_as_invalid_entity() -> None:
    item = association("nosuchtype-" + "0" * 64, eid(ADDRESS), submitted_at=NOW)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    assert [p.code for p in plan.batch.preset] == ["invalid_entity"]


def test_only_association_items_need_their_entities_checked() -> None:
    create = association(ASN, ADDRESS)
    assert needed_entity_ids(decoded(associations(create))) == {eid(ASN), eid(ADDRESS)}
    assert needed_entity_ids(decoded(deletes(create))) == set()
    assert needed_entity_ids(decoded(entities(entity(HOST)))) == set()


def test_a_delete_needs_no_entity_and_names_its_type_canonically() -> None:
    typed = association(ASN, ADDRESS, "asn to address", job="j", index=0, total=2)
    untyped = association(ASN, ADDRESS, job="j", index=1, total=2)
    plan = plan_message(decoded(deletes(typed, untyped)), RULES, set(), NOW, 120)

    assert [(d.key, d.association_type) for d in plan.batch.deletes] == [
        (("j", 0), "ASN to Address"),
        (("j", 1), None),
    ]
    assert {d.association_id for d in plan.batch.deletes} == {
        association_id(eid(ASN), eid(ADDRESS))
    }
    assert plan.kind == MessageKind.ASSOCIATION_DELETE
    assert [job.kind for job in plan.batch.jobs] == ["association_delete"]


def test_an_entity_item_writes_the_entity_its_children_and_their_links() -> None:
    item = entity(URL, [FILE, HOST], [(URL, FILE, "File Download"), (FILE, HOST, "File Traffic")])
    plan = plan_message(decoded(entities(item)), RULES, set(), NOW, 120)

    [write] = plan.batch.entities
    assert [record.id for record in write.entities] == [eid(URL), eid(FILE), eid(HOST)]
    assert [
        (e.entity_type, e.related_type, e.association_type, e.file_action) for e in write.edges
    ] == [
        ("url", "md5", "File Download", False),
        ("md5", "domain", "File Traffic", True),
    ]
    assert plan.created_entity_ids == {eid(URL), eid(FILE), eid(HOST)}
    assert write.part_keys == ()  # only the entity itself is counted


def test_an_entity_item_gives_each_child_and_link_a_key_of_its_own_from_parts_from() -> None:
    item = entity(
        URL,
        [FILE, HOST],
        [(URL, FILE, "File Download"), (FILE, HOST, "File Traffic")],
        job="j",
        total=5,
        parts_from=1,
    )
    plan = plan_message(decoded(entities(item)), RULES, set(), NOW, 120)

    [write] = plan.batch.entities
    assert write.key == ("j", 0)
    assert write.part_keys == (("j", 1), ("j", 2), ("j", 3), ("j", 4))
    assert [edge.key for edge in write.edges] == [("j", 3), ("j", 4)]


def test_a_failing_entity_item_fails_with_its_children_and_links() -> None:
    item = entity(URL, [FILE], [(URL, FILE, "File Download")], job="j", total=3, parts_from=1)
    batch = failed_items_batch(MessageKind.ENTITY, [(item, "handler_error: boom")], NOW)

    assert [(p.key, p.outcome, p.code) for p in batch.preset] == [
        (("j", i), Outcome.FAILED, "handler_error") for i in range(3)
    ]
    assert [job.job_id for job in batch.jobs] == ["j"]


def test_custom_types_take_part_in_matching() -> None:
    custom = AssociationType(
        name="Mutex Seen On Address",
        primary=Kind.MUTEX,
        non_primary=frozenset({Kind.ADDRESS}),
        file_action=False,
        custom=True,
    )
    mutex = ("mutex", "Global\\evil")
    item = association(mutex, ADDRESS, submitted_at=NOW)
    known = EVERYTHING | {eid(mutex)}

    before = plan_message(decoded(associations(item)), RULES, known, NOW, 120)
    after = plan_message(decoded(associations(item)), AssociationRules([custom]), known, NOW, 120)

    assert [p.code for p in before.batch.preset] == ["association_not_allowed"]
    assert [e.association_type for e in after.batch.edges] == ["Mutex Seen On Address"]


def test_the_retry_delay_backs_off_with_the_time_waited_within_bounds_and_before_the_end() -> None:
    now = time.time()

    def delay(waited: float, wait: float = 120.0) -> float:
        return retry_delay(now - waited, now, wait, 0.5)

    assert delay(0) == 0.5
    assert delay(8) == 2.0
    assert delay(1000, wait=10_000) == 30.0
    assert delay(110) == pytest.approx(10.0)
    assert delay(119.9) == 0.5


def test_associations_in_an_entity_message_count_its_entities_as_existing() -> None:
    written = entity(ASN, [ADDRESS], job="j", index=0, total=3, submitted_at=NOW)
    link = association(ASN, ADDRESS, job="j", index=1, total=3, submitted_at=NOW)
    waiting = association(ASN, HOST, "ASN to Address", job="j", index=2, total=3)
    message = decoded(entities(written, link, waiting))

    assert needed_entity_ids(message) == {eid(HOST)}
    plan = plan_message(message, RULES, set(), NOW, 120)

    assert [w.key for w in plan.batch.entities] == [("j", 0)]
    [edge] = plan.batch.edges
    assert (edge.key, edge.association_type) == (("j", 1), "ASN to Address")
    assert plan.pending == ()
    assert [(p.key, p.code) for p in plan.batch.preset] == [(("j", 2), "association_not_allowed")]
    [header] = plan.batch.jobs
    assert (header.kind, header.total) == ("entity", 3)


def test_an_association_in_an_entity_message_waits_for_an_entity_written_elsewhere() -> None:
    written = entity(HOST, job="j", index=0, total=2, submitted_at=NOW)
    link = association(ADDRESS, HOST, job="j", index=1, total=2, submitted_at=NOW)
    plan = plan_message(decoded(entities(written, link)), RULES, set(), NOW, 120)

    assert plan.pending == (link,)
    assert plan.batch.edges == [] and len(plan.batch.entities) == 1


# context associations and provenance ----------------------------------------------------------


def test_a_context_association_becomes_an_edge_under_its_relationship_name() -> None:
    item = association(ADDRESS, FAMILY, "C2-Of", submitted_at=NOW - 1)
    existing = EVERYTHING | {eid(FAMILY)}
    plan = plan_message(decoded(associations(item)), RULES, existing, NOW, 120)

    [edge] = plan.batch.edges
    assert (edge.entity_id, edge.related_id) == (eid(ADDRESS), eid(FAMILY))
    assert (edge.association_type, edge.file_action) == ("c2-of", False)
    assert (edge.entity_type, edge.related_type) == ("ip", "malware-family")


def test_a_matrix_name_on_a_context_pair_is_rejected_by_the_worker_too() -> None:
    item = association(FAMILY, HOST, "File DNS Query", submitted_at=NOW - 1)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [preset] = plan.batch.preset
    assert preset.code == "association_not_allowed"
    assert plan.batch.edges == []


def test_an_edge_carries_the_user_and_the_named_source() -> None:
    given = Provenance(source="feodo", confidence=75, tlp="clear", first_seen=1.0, last_seen=2.0)
    item = association(ASN, ADDRESS, user="bob", submitted_at=NOW - 1, provenance=given)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [edge] = plan.batch.edges
    assert edge.sources == (
        SourceEntry("bob", "user", 75, "clear", 1.0, 2.0),
        SourceEntry("feodo", "source", 75, "clear", 1.0, 2.0),
    )


def test_an_edge_without_provenance_is_the_users_report_at_submission() -> None:
    item = association(ASN, ADDRESS, user="bob", submitted_at=NOW - 1)
    plan = plan_message(decoded(associations(item)), RULES, EVERYTHING, NOW, 120)

    [edge] = plan.batch.edges
    assert edge.sources == (SourceEntry("bob", "user", None, None, NOW - 1, NOW - 1),)


def test_an_entity_write_carries_each_records_and_each_links_sources() -> None:
    given = Provenance(source="feodo", confidence=75)
    item = entity(ADDRESS, [FAMILY], [(ADDRESS, FAMILY, "c2-of")], submitted_at=NOW - 1)
    item = item.model_copy(
        update={
            "entity": item.entity.model_copy(update={"provenance": given}),
            "links": tuple(link.model_copy(update={"provenance": given}) for link in item.links),
        }
    )
    plan = plan_message(decoded(entities(item)), RULES, set(), NOW, 120)

    [write] = plan.batch.entities
    fed = (
        SourceEntry("alice", "user", 75, None, NOW - 1, NOW - 1),
        SourceEntry("feodo", "source", 75, None, NOW - 1, NOW - 1),
    )
    alone = (SourceEntry("alice", "user", None, None, NOW - 1, NOW - 1),)
    assert write.sources == (fed, alone)
    [edge] = write.edges
    assert (edge.association_type, edge.sources) == ("c2-of", fed)
