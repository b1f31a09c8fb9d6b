"""The front's synchronous checks (SPEC §3): shape, IDs, the association matrix, entities.

Each check takes one parsed JSON value and returns either what to queue or an ``ItemProblem``
(a 400 for a single write, a ``rejected`` entry for a bulk item). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import annotated_types
from pydantic import ValidationError

from ingest_api.errors import ApiError
from schemas import (
    AssociationRules,
    EntityLink,
    EntityRecord,
    InvalidEntityId,
    NormalisationError,
    Provenance,
    Rejection,
    entity_id_of_normalised,
    entity_type,
    fold_tags,
    normalise,
    parse_entity_id,
)
from schemas.http import AssociationBody, EntityBody, NestedEntity, entity_main_value
from schemas.provenance import NOT_PLAIN, PROVENANCE_FIELDS, plain_provenance, provenance_of

__all__ = [
    "AssociationRequest",
    "EntityRequest",
    "ItemProblem",
    "check_association",
    "check_entity",
    "describe_validation_error",
]

MAX_NESTED_ENTITIES = 10_000
"""Children one entity body may carry in all (every level counted)."""

MAX_ATTRIBUTE_DEPTH = 32
"""Levels of lists and objects an entity's attributes may nest (deeper ones cannot be
serialised into a queue message: pydantic stops at about 255)."""


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """Why an item is refused at the front: a ``code`` and a sentence, as in an error body."""

    code: str
    message: str
    err_code: str | None = None
    candidates: tuple[str, ...] = ()
    detail: str | None = None

    @classmethod
    def from_rejection(cls, rejection: Rejection) -> ItemProblem:
        return cls(
            rejection.code.value,
            rejection.message,
            rejection.err_code,
            rejection.candidates,
            rejection.detail,
        )

    def as_error(self) -> dict[str, str]:
        """The ``{code, message}`` object of a bulk ``rejected`` entry (with ``detail`` when
        the matrix refused the pair)."""
        if self.detail is None:
            return {"code": self.code, "message": self.message}
        return {"code": self.code, "message": self.message, "detail": self.detail}

    def to_api_error(self) -> ApiError:
        """The 400 answering a single write refused for this reason."""
        extra: dict[str, object] = {}
        if self.candidates:
            extra["candidates"] = list(self.candidates)
        if self.detail is not None:
            extra["detail"] = self.detail
        return ApiError(400, self.code, self.message, err_code=self.err_code, extra=extra)


@dataclass(frozen=True, slots=True)
class AssociationRequest:
    """A checked association: IDs, the canonical type name (None: every type, deletes only)
    and the provenance the body gave."""

    entity_id: str
    related_id: str
    association_type: str | None
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True)
class EntityRequest:
    """A checked entity body: the entity, its children (flattened, unique) and their links."""

    entity: EntityRecord
    children: tuple[EntityRecord, ...]
    links: tuple[EntityLink, ...]


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """A readable sentence from pydantic's errors: ``field: problem; ...``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = [str(step) for step in error["loc"]]
        if len(loc) > 8:  # deeply nested bodies: keep the message readable
            loc = [*loc[:3], "...", *loc[-4:]]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    suffix = f" (and {more} more)" if more > 0 else ""
    return "The body is not valid: " + "; ".join(parts) + suffix + "."


def _shape_problem(exc: ValidationError) -> ItemProblem:
    return ItemProblem("invalid_body", describe_validation_error(exc))


_PLAIN_FIELDS = frozenset({"entityID", "relatedEntityID", "associationType"}) | PROVENANCE_FIELDS
# The fast path must accept nothing the model would refuse: its bound is the model's own.
_MAX_FIELD_LENGTH = min(
    meta.max_length
    for field in AssociationBody.model_fields.values()
    for meta in field.metadata
    if isinstance(meta, annotated_types.MaxLen)
)


def _plain_association(
    value: dict[str, Any],
) -> tuple[str, str, str | None, Provenance | None] | None:
    """The body of a well-formed association (with plain provenance, if any) without running
    the validator (the common case on the hot path), or None to let ``AssociationBody``
    validate it and word the problem."""
    entity = value.get("entityID")
    related = value.get("relatedEntityID")
    name = value.get("associationType")
    if (
        type(entity) is str
        and type(related) is str
        and (name is None or type(name) is str)
        and value.keys() <= _PLAIN_FIELDS
        and len(entity) <= _MAX_FIELD_LENGTH
        and len(related) <= _MAX_FIELD_LENGTH
        and (name is None or len(name) <= _MAX_FIELD_LENGTH)
    ):
        if len(value) == 2 or (len(value) == 3 and "associationType" in value):
            return entity, related, name, None
        provenance = plain_provenance(value)
        if provenance is not NOT_PLAIN:
            assert provenance is None or isinstance(provenance, Provenance)
            return entity, related, name, provenance
    return None


def check_association(
    value: Any, rules: AssociationRules, *, delete: bool = False
) -> AssociationRequest | ItemProblem:
    """Check one association body. For a create, the pair must fit exactly one type (or the
    named one), or have a context entity at either end (then the name is a free relationship
    name, ``associated`` by default); for a delete, the IDs must be valid and a named type
    must exist, or be a relationship name of a context pair."""
    if not isinstance(value, dict):
        return ItemProblem("invalid_body", "An association must be a JSON object.")
    fields = _plain_association(value)
    if fields is None:
        try:
            body = AssociationBody.model_validate(value)
        except ValidationError as exc:
            return _shape_problem(exc)
        fields = body.entityID, body.relatedEntityID, body.associationType, provenance_of(body)
    entity_id, related_id, type_name, provenance = fields
    for field, eid in (("entityID", entity_id), ("relatedEntityID", related_id)):
        try:
            parse_entity_id(eid)
        except InvalidEntityId as exc:
            return ItemProblem("invalid_entity_id", f"{field}: {exc}.")
    if delete:
        return _check_delete(entity_id, related_id, type_name, rules)
    matched = rules.match(entity_id, related_id, type_name)
    if isinstance(matched, Rejection):
        return ItemProblem.from_rejection(matched)
    return AssociationRequest(entity_id, related_id, matched.name, provenance)


def _check_delete(
    entity_id: str, related_id: str, type_name: str | None, rules: AssociationRules
) -> AssociationRequest | ItemProblem:
    if entity_id == related_id:
        return ItemProblem("self_association", "An entity cannot be associated with itself.")
    if type_name is None:
        return AssociationRequest(entity_id, related_id, None)
    named = rules.get(type_name)
    if named is not None:
        return AssociationRequest(entity_id, related_id, named.name)
    if not rules.is_context_pair(entity_id, related_id):
        name = type_name.strip()[:128]
        return ItemProblem(
            "unknown_association_type", f"There is no association type named {name!r}."
        )
    relationship = rules.relationship(type_name)
    if isinstance(relationship, Rejection):
        return ItemProblem.from_rejection(relationship)
    return AssociationRequest(entity_id, related_id, relationship.name)


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in ``value`` nest more than ``limit`` levels (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _record(
    node: EntityBody | NestedEntity,
    path: str,
    visible_by: tuple[str, ...],
    provenance: Provenance | None,
) -> EntityRecord | ItemProblem:
    if _nests_deeper_than(node.attributes, MAX_ATTRIBUTE_DEPTH):
        return ItemProblem(
            "invalid_body", f"{path}attributes nest deeper than {MAX_ATTRIBUTE_DEPTH} levels."
        )
    try:
        entity_type(node.type)  # an unknown type is named as such, before its attributes
        normalised = normalise(node.type, entity_main_value(node))
    except NormalisationError as exc:
        return ItemProblem(type(exc).code, f"{path}{exc}.")
    attributes = dict(node.attributes)
    attributes[node.type] = normalised
    if isinstance(node, EntityBody):
        return EntityRecord(
            id=entity_id_of_normalised(node.type, normalised),
            type=node.type,
            attributes=attributes,
            reputation=node.reputation,
            tags=fold_tags(node.tags),
            visible_by=visible_by,
            provenance=provenance,
        )
    return EntityRecord(
        id=entity_id_of_normalised(node.type, normalised),
        type=node.type,
        attributes=attributes,
        visible_by=visible_by,
        provenance=provenance,
    )


def _inherit(own: Provenance | None, parent: Provenance | None) -> Provenance | None:
    """A child's provenance: what it gives, the rest from its parent (the two times as a pair,
    so that they stay in order)."""
    if own is None or parent is None:
        return parent if own is None else own
    given = own.model_dump(exclude_none=True)
    if "first_seen" in given or "last_seen" in given:
        given.setdefault("first_seen", None)
        given.setdefault("last_seen", None)
    return parent.model_copy(update=given)


def check_entity(value: Any, rules: AssociationRules) -> EntityRequest | ItemProblem:
    """Check an entity body: normalise the main attribute of the entity and of every nested
    child (any depth), and match each parent -> child link in either orientation (a context
    child or parent: parent -> child, under the child's ``associationType``). Children inherit
    the parent's ``visibleBy``, and its provenance unless they give their own, which their
    link to the parent carries too; a child met twice is queued once."""
    if not isinstance(value, dict):
        return ItemProblem("invalid_body", "An entity must be a JSON object.")
    try:
        body = EntityBody.model_validate(value)
    except ValidationError as exc:
        return _shape_problem(exc)
    except RecursionError:
        return ItemProblem("invalid_body", "The entity is nested too deeply.")
    visible_by = tuple(dict.fromkeys(body.visibleBy))
    root = _record(body, "", visible_by, provenance_of(body))
    if isinstance(root, ItemProblem):
        return root
    children: dict[str, EntityRecord] = {}
    links: dict[tuple[str, str], EntityLink] = {}
    # Depth-first without recursion, so depth is bounded by the parser, not the call stack.
    stack: list[tuple[str, Provenance | None, str, NestedEntity]] = [
        (root.id, root.provenance, f"associations[{i}]", child)
        for i, child in enumerate(body.associations)
    ]
    stack.reverse()
    while stack:
        parent_id, inherited, path, node = stack.pop()
        if len(children) >= MAX_NESTED_ENTITIES:
            return ItemProblem(
                "invalid_body", f"An entity may carry at most {MAX_NESTED_ENTITIES} children."
            )
        child = _record(node, f"{path}: ", visible_by, _inherit(provenance_of(node), inherited))
        if isinstance(child, ItemProblem):
            return child
        matched = rules.match_nested(parent_id, child.id, node.associationType)
        if isinstance(matched, Rejection):
            problem = ItemProblem.from_rejection(matched)
            return ItemProblem(
                problem.code,
                f"{path}: {problem.message}",
                problem.err_code,
                problem.candidates,
                problem.detail,
            )
        association_type, primary, related = matched
        if child.id != root.id:
            children.setdefault(child.id, child)
        links.setdefault(
            (primary, related),
            EntityLink(
                entity_id=primary,
                related_id=related,
                association_type=association_type.name,
                provenance=child.provenance,
            ),
        )
        nested = [
            (child.id, child.provenance, f"{path}.associations[{i}]", grandchild)
            for i, grandchild in enumerate(node.associations)
        ]
        stack.extend(reversed(nested))
    return EntityRequest(root, tuple(children.values()), tuple(links.values()))
