"""Pure decisions: what one decoded message does to the store.

Nothing here does I/O. Given a message, the association rules in force, the entity IDs known
to exist and the current time, ``plan_message`` returns the ``WriteBatch`` to apply and the
association items still waiting for an entity. The worker loop (``workers.worker``) does the
reading, writing and settling around it.

Outcomes (SPEC §4):

- association items: an ``EdgeWrite`` (the store answers ``stored`` or ``duplicate``), or a
  ``rejected`` preset outcome with the rule's code; when an end does not exist yet the item is
  pending until ``entity_wait`` seconds after its submission, then rejected ``entity_not_found``;
- delete items: an ``EdgeDelete`` (``deleted`` or ``not_found``); no entity check is needed;
- entity items: an ``EntityWrite`` of the entity, its children and the links they imply.

Every write carries the source entries of its item (``sources.source_entries``: the submitting
user, and the source its provenance names).

Planning runs on the worker's event loop for every item, so it does no per-item work it can
share: an ID's type and a (types, type name) match are computed once per message (a 1,000-item
message of repeated entities: 6.8 ms -> 3.3 ms).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from schemas import (
    AssociationRules,
    InvalidEntityId,
    Match,
    Provenance,
    Rejection,
    RejectionCode,
    association_id,
    parse_entity_id,
)
from schemas.messages import (
    AssociationItem,
    AssociationMessage,
    EntityItem,
    EntityMessage,
    ItemMeta,
    MessageKind,
)
from workers.store.records import (
    EdgeDelete,
    EdgeWrite,
    EntityWrite,
    JobHeader,
    Outcome,
    PresetOutcome,
    SourceEntry,
    WriteBatch,
)
from workers.store.sources import source_entries

Message = AssociationMessage | EntityMessage

MAX_RETRY_DELAY = 30.0


@dataclass(slots=True)
class Plan:
    """What to do with one message: write ``batch``, then retry ``pending`` later."""

    kind: MessageKind
    batch: WriteBatch
    pending: tuple[AssociationItem, ...] = ()
    created_entity_ids: frozenset[str] = frozenset()
    """Entity IDs the batch writes: known to exist once the write succeeded."""
    rejections: dict[str, int] = field(default_factory=dict)
    """Rejected items by code, for the per-message log summary."""

    @property
    def writes_anything(self) -> bool:
        b = self.batch
        return bool(b.edges or b.deletes or b.entities or b.preset)


def needed_entity_ids(message: Message) -> set[str]:
    """The entity IDs whose existence decides the message (both ends of every association)."""
    if message.kind != MessageKind.ASSOCIATION:
        return set()
    ids: set[str] = set()
    for item in message.items:
        assert isinstance(item, AssociationItem)
        ids.add(item.entity_id)
        ids.add(item.related_id)
    return ids


def plan_message(
    message: Message,
    rules: AssociationRules,
    existing: Collection[str],
    now: float,
    entity_wait: float,
) -> Plan:
    """Decide every item of ``message`` (see the module docstring).

    ``existing`` must contain every ID of ``needed_entity_ids(message)`` that exists.
    """
    if isinstance(message, EntityMessage):
        return _plan_entities(message.items, rules, now)
    kind = MessageKind(message.kind)
    if kind == MessageKind.ASSOCIATION_DELETE:
        return _plan_deletes(message.items, rules, now)
    return _plan_associations(message.items, rules, existing, now, entity_wait)


def retry_delay(
    pending: Iterable[ItemMeta], now: float, entity_wait: float, min_delay: float
) -> float:
    """Seconds to wait before looking for the missing entities again.

    Backs off with the age of the oldest pending item (a quarter of it, within
    ``min_delay``..30 s) but never waits much past that item's deadline.
    """
    oldest = min(item.submitted_at for item in pending)
    elapsed = max(0.0, now - oldest)
    delay = min(max(elapsed / 4, min_delay), MAX_RETRY_DELAY)
    remaining = entity_wait - elapsed
    return max(min(delay, remaining), min_delay)


def _key(item: ItemMeta) -> tuple[str, int]:
    return (item.job, item.index)


class _Sources:
    """The source entries of the items of one message, built once per distinct submission."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, Provenance | None, float], tuple[SourceEntry, ...]] = {}

    def of(self, meta: ItemMeta, provenance: Provenance | None) -> tuple[SourceEntry, ...]:
        key = (meta.user, provenance, meta.submitted_at)
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = source_entries(meta.user, provenance, meta.submitted_at)
        return found


def _headers(kind: MessageKind, items: Iterable[ItemMeta]) -> list[JobHeader]:
    jobs: dict[str, JobHeader] = {}
    for item in items:
        if item.job not in jobs:
            jobs[item.job] = JobHeader(
                job_id=item.job,
                kind=kind.value,
                owner=item.user,
                groups=tuple(item.groups),
                total=item.total,
                created_at=item.submitted_at,
            )
    return list(jobs.values())


def _reject(plan: Plan, item: ItemMeta, code: str, message: str) -> None:
    plan.batch.preset.append(PresetOutcome(_key(item), Outcome.REJECTED, code, message))
    plan.rejections[code] = plan.rejections.get(code, 0) + 1


def _rejection_text(rejection: Rejection) -> str:
    if rejection.err_code:
        return f"{rejection.message} (errCode {rejection.err_code})"
    return rejection.message


def _plan_associations(
    items: Sequence[AssociationItem],
    rules: AssociationRules,
    existing: Collection[str],
    now: float,
    entity_wait: float,
) -> Plan:
    # Matching two distinct valid IDs depends only on their types' kinds and the type name,
    # so one result serves every item with the same (types, name).
    plan = Plan(MessageKind.ASSOCIATION, WriteBatch(now=now))
    pending: list[AssociationItem] = []
    decided: list[AssociationItem] = []
    edges = plan.batch.edges
    types: dict[str, str | InvalidEntityId] = {}
    matches: dict[tuple[str, str, str | None], Match | Rejection] = {}
    sources = _Sources()
    for item in items:
        entity_id, related_id = item.entity_id, item.related_id
        entity_type = types.get(entity_id) or _parsed_type(types, entity_id)
        related_type = types.get(related_id) or _parsed_type(types, related_id)
        if isinstance(entity_type, InvalidEntityId) or isinstance(related_type, InvalidEntityId):
            bad = entity_type if isinstance(entity_type, InvalidEntityId) else related_type
            _reject(plan, item, RejectionCode.INVALID_ENTITY, str(bad))
            decided.append(item)
            continue
        if entity_id == related_id:
            matched = rules.match(entity_id, related_id, item.association_type)
        else:
            pair = (entity_type, related_type, item.association_type)
            found = matches.get(pair)
            if found is None:
                found = matches[pair] = rules.match(entity_id, related_id, item.association_type)
            matched = found
        if isinstance(matched, Rejection):
            _reject(plan, item, matched.code, _rejection_text(matched))
            decided.append(item)
            continue
        if entity_id not in existing or related_id not in existing:
            if now - item.submitted_at < entity_wait:
                pending.append(item)
                continue
            missing = [eid for eid in (entity_id, related_id) if eid not in existing]
            names = " and ".join(dict.fromkeys(missing))
            _reject(plan, item, RejectionCode.ENTITY_NOT_FOUND, f"entity {names} does not exist")
            decided.append(item)
            continue
        edges.append(
            EdgeWrite(
                key=(item.job, item.index),
                association_id=association_id(entity_id, related_id),
                entity_id=entity_id,
                related_id=related_id,
                entity_type=entity_type,
                related_type=related_type,
                association_type=matched.name,
                file_action=matched.file_action,
                created_by=item.user,
                sources=sources.of(item, item.provenance),
            )
        )
        decided.append(item)
    plan.batch.jobs = _headers(MessageKind.ASSOCIATION, decided)
    plan.pending = tuple(pending)
    return plan


def _parsed_type(types: dict[str, str | InvalidEntityId], entity_id: str) -> str | InvalidEntityId:
    """The type name of ``entity_id`` or the error that it is none, remembered in ``types``."""
    try:
        parsed: str | InvalidEntityId = parse_entity_id(entity_id).name
    except InvalidEntityId as exc:
        parsed = exc
    types[entity_id] = parsed
    return parsed


def _edge(
    meta: ItemMeta,
    ids: tuple[str, str],
    types: tuple[str, str],
    type_name: str,
    file_action: bool,
    sources: tuple[SourceEntry, ...],
) -> EdgeWrite:
    return EdgeWrite(
        key=_key(meta),
        association_id=association_id(*ids),
        entity_id=ids[0],
        related_id=ids[1],
        entity_type=types[0],
        related_type=types[1],
        association_type=type_name,
        file_action=file_action,
        created_by=meta.user,
        sources=sources,
    )


def _plan_deletes(items: Sequence[AssociationItem], rules: AssociationRules, now: float) -> Plan:
    plan = Plan(MessageKind.ASSOCIATION_DELETE, WriteBatch(now=now))
    for item in items:
        type_name = item.association_type
        if type_name is not None:
            known = rules.get(type_name)
            # Canonical spelling when the type is known; a type removed since the front
            # accepted the delete can only leave nothing to delete (``not_found``).
            type_name = known.name if known is not None else type_name
        plan.batch.deletes.append(
            EdgeDelete(
                key=_key(item),
                association_id=association_id(item.entity_id, item.related_id),
                association_type=type_name,
            )
        )
    plan.batch.jobs = _headers(MessageKind.ASSOCIATION_DELETE, items)
    return plan


def _plan_entities(items: Sequence[EntityItem], rules: AssociationRules, now: float) -> Plan:
    plan = Plan(MessageKind.ENTITY, WriteBatch(now=now))
    created: set[str] = set()
    sources = _Sources()
    for item in items:
        records = (item.entity, *item.children)
        types = {record.id: record.type for record in records}
        edges: list[EdgeWrite] = []
        for link in item.links:
            # The front matched the link when it accepted the entity; a type removed since is
            # still what the user asked for, so the link keeps its name rather than vanish.
            known = rules.get(link.association_type)
            edges.append(
                _edge(
                    item,
                    (link.entity_id, link.related_id),
                    (
                        types.get(link.entity_id) or _type_of(link.entity_id),
                        types.get(link.related_id) or _type_of(link.related_id),
                    ),
                    known.name if known else link.association_type,
                    known.file_action if known else False,
                    sources.of(item, link.provenance),
                )
            )
        plan.batch.entities.append(
            EntityWrite(
                _key(item),
                records,
                tuple(edges),
                tuple(sources.of(item, record.provenance) for record in records),
            )
        )
        created.update(types)
    plan.batch.jobs = _headers(MessageKind.ENTITY, items)
    plan.created_entity_ids = frozenset(created)
    return plan


def _type_of(entity_id: str) -> str:
    try:
        return parse_entity_id(entity_id).name
    except InvalidEntityId:
        return entity_id.split("-", 1)[0]
