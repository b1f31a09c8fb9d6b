"""The checks of a bulk of associations, a chunk of items at a time, with the answers of
``check_association`` item by item but without its per-item cost.

What ``check_association`` decides for a well-formed item (string IDs of a known type and 64
lowercase hex digits, distinct, plain provenance if any) depends only on the two IDs' type
prefixes and the ``associationType`` given: that outcome (the canonical type name, or the
refusal) is decided once by ``check_association`` itself and kept per rule set. An item of a
chunk then costs a few dictionary lookups; the hex parts of all its IDs are checked by one
pass over their concatenation. Everything else (other shapes, provenance in any
but its plainest form, a chunk with a malformed hex part, unknown types) goes through
``check_association``, so every answer, refusal wording included, is the same.
"""

from __future__ import annotations

import weakref
from typing import Any, Final

from ingest_api.checks import _MAX_FIELD_LENGTH, AssociationRequest, ItemProblem, check_association
from schemas import Provenance
from schemas.catalogue import CATALOGUE
from schemas.provenance import NOT_PLAIN, PROVENANCE_FIELDS, plain_provenance
from schemas.rules import AssociationRules

__all__ = ["AssociationChunkChecker", "CheckedAssociation"]

CheckedAssociation = tuple[int, str, str, str | None, Provenance | None]
"""A valid bulk item: its index, entity ID, related ID, canonical type name (None: every type,
deletes only) and provenance."""

_PLAIN_FIELDS: Final = (
    frozenset({"entityID", "relatedEntityID", "associationType"}) | PROVENANCE_FIELDS
)
_HEX: Final = b"0123456789abcdef"
_MAX_CACHED: Final = 4096
"""Outcomes kept per rule set and kind, and provenances kept: beyond, they start afresh."""

_SLOW: Final = object()
"""A cached outcome meaning: check such items with ``check_association``."""

_Outcome = AssociationRequest | ItemProblem | object
_Key = tuple[str, str, str | None]

# Outcomes per rule set and kind (create, delete): a new rule set starts afresh.
_OUTCOMES: weakref.WeakKeyDictionary[AssociationRules, tuple[dict[_Key, _Outcome], ...]] = (
    weakref.WeakKeyDictionary()
)
_PROVENANCES: dict[tuple[object, ...], Provenance | None] = {}


def _outcomes(rules: AssociationRules, delete: bool) -> dict[_Key, _Outcome]:
    pair = _OUTCOMES.get(rules)
    if pair is None:
        pair = _OUTCOMES[rules] = ({}, {})
    return pair[delete]


class AssociationChunkChecker:
    """Checks the association items of one bulk request against ``rules`` (module docstring)."""

    def __init__(self, rules: AssociationRules, *, delete: bool = False) -> None:
        self._rules = rules
        self._delete = delete
        self._outcomes = _outcomes(rules, delete)

    def check(
        self, chunk: list[tuple[int, Any]]
    ) -> tuple[list[CheckedAssociation], list[tuple[int, ItemProblem]]]:
        """The valid items of ``chunk`` and the refused ones with why, each in order."""
        valid: list[CheckedAssociation] = []
        refused: list[tuple[int, ItemProblem]] = []
        hexes: list[str] = []
        outcomes = self._outcomes
        delete = self._delete
        for index, value in chunk:
            outcome: Any = _SLOW
            if type(value) is dict:
                entity = value.get("entityID")
                related = value.get("relatedEntityID")
                name = value.get("associationType")
                if (
                    type(entity) is str
                    and type(related) is str
                    and 65 < len(entity) <= _MAX_FIELD_LENGTH
                    and 65 < len(related) <= _MAX_FIELD_LENGTH
                    and entity[-65] == "-"
                    and related[-65] == "-"
                    and entity != related
                    and (name is None or (type(name) is str and len(name) <= _MAX_FIELD_LENGTH))
                ):
                    size = len(value)
                    if size == 2 or (size == 3 and "associationType" in value):
                        provenance: Any = None
                    else:
                        provenance = _provenance(value)
                    if provenance is not NOT_PLAIN:
                        key = (entity[:-65], related[:-65], name)
                        outcome = outcomes.get(key)
                        if outcome is None:
                            outcome = self._decide(key)
                        if outcome is not _SLOW:
                            hexes.append(entity[-64:])
                            hexes.append(related[-64:])
                            if type(outcome) is ItemProblem:
                                refused.append((index, outcome))
                            else:
                                valid.append(
                                    (
                                        index,
                                        entity,
                                        related,
                                        outcome.association_type,
                                        None if delete else provenance,  # a delete keeps none
                                    )
                                )
                            continue
            self._check_one(index, value, valid, refused)
        if hexes and "".join(hexes).encode("utf-8", "surrogatepass").translate(None, _HEX):
            return self._one_by_one(chunk)  # some ID's hex part is malformed: words it
        return valid, refused

    def _decide(self, key: _Key) -> _Outcome:
        """What ``check_association`` answers for items of this key (two distinct IDs of these
        prefixes, well-formed), or ``_SLOW`` when its answer would name the IDs."""
        primary, related, name = key
        outcome: _Outcome = _SLOW
        if primary in CATALOGUE and related in CATALOGUE:
            value = {
                "entityID": f"{primary}-{'0' * 64}",
                "relatedEntityID": f"{related}-{'1' * 64}",
            }
            if name is not None:
                value["associationType"] = name
            outcome = check_association(value, self._rules, delete=self._delete)
        if len(self._outcomes) >= _MAX_CACHED:
            self._outcomes.clear()  # many type names: start afresh rather than grow
        self._outcomes[key] = outcome
        return outcome

    def _one_by_one(
        self, chunk: list[tuple[int, Any]]
    ) -> tuple[list[CheckedAssociation], list[tuple[int, ItemProblem]]]:
        valid: list[CheckedAssociation] = []
        refused: list[tuple[int, ItemProblem]] = []
        for index, value in chunk:
            self._check_one(index, value, valid, refused)
        return valid, refused

    def _check_one(
        self,
        index: int,
        value: Any,
        valid: list[CheckedAssociation],
        refused: list[tuple[int, ItemProblem]],
    ) -> None:
        """``check_association``'s answer for one item, added to ``valid`` or ``refused``."""
        checked = check_association(value, self._rules, delete=self._delete)
        if isinstance(checked, ItemProblem):
            refused.append((index, checked))
        else:
            valid.append(
                (
                    index,
                    checked.entity_id,
                    checked.related_id,
                    checked.association_type,
                    checked.provenance,
                )
            )


def _provenance(value: dict[str, Any]) -> Provenance | object | None:
    """``plain_provenance`` of an item whose other fields are plain (``NOT_PLAIN`` when it has
    a field that is no association field), kept per distinct value: the same source, TLP and
    times recur across a bulk."""
    if not value.keys() <= _PLAIN_FIELDS:
        return NOT_PLAIN
    confidence = value.get("confidence")
    key = (
        value.get("source"),
        type(confidence),
        confidence,
        value.get("tlp"),
        value.get("firstSeen"),
        value.get("lastSeen"),
    )
    try:
        found = _PROVENANCES.get(key, NOT_PLAIN)
    except TypeError:  # a list or object where a plain value goes: the model words it
        return NOT_PLAIN
    if found is NOT_PLAIN:
        found = plain_provenance(value)
        if found is not NOT_PLAIN:
            if len(_PROVENANCES) >= _MAX_CACHED:
                _PROVENANCES.clear()  # many distinct provenances: start afresh
            _PROVENANCES[key] = found  # type: ignore[assignment]
    return found
