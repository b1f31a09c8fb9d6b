"""The association matrix: association types, File Actions, context relationships and
matching (SPEC §2).

``AssociationRules.match`` decides from two entity IDs' type prefixes alone whether (and as
which type) they can be associated primary -> non-primary; it runs for every submitted item,
so the (primary kind, non-primary kind) -> candidates table is computed once per rule set.
``AssociationRules.match_types`` decides the same from two entity type names (for converters
that know types before they know IDs).

The matrix governs pairs whose two ends have a kind. A pair with a context entity (a type
with no kind: ``malware``, ``threat``, ``cve``, ...) at either end is always allowed, under a
free relationship name (``ContextRelationship``), ``associated`` unless one is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from schemas.catalogue import CATALOGUE, Kind
from schemas.ids import id_hint

NOT_ALLOWED_ERR_CODE = "0x1001"
NOT_ALLOWED_MESSAGE = "Association cannot be applied to the indicator types."
MAX_TYPE_NAME_LENGTH = 128
DEFAULT_CONTEXT_RELATIONSHIP = "associated"
"""The relationship name of a context association submitted without one."""
_MAX_CACHED_RELATIONSHIPS = 4096


@dataclass(frozen=True, slots=True)
class AssociationType:
    """A named, directed association: ``primary`` kind -> any of the ``non_primary`` kinds.

    File Actions (``file_action``) always have primary ``File``; ``custom`` types were added by
    an administrator and can be removed again, the defaults cannot.
    """

    name: str
    primary: Kind
    non_primary: frozenset[Kind]
    file_action: bool
    custom: bool = False
    context: ClassVar[bool] = False
    """A matrix type, not a context relationship (see ``ContextRelationship``)."""

    def __post_init__(self) -> None:
        # Accept kind names as plain strings; raises ValueError for an unknown kind.
        object.__setattr__(self, "primary", Kind(self.primary))
        object.__setattr__(self, "non_primary", frozenset(Kind(k) for k in self.non_primary))

    def fits(self, primary: Kind | None, related: Kind | None) -> bool:
        """Whether an entity of kind ``primary`` may be this type's primary end and one of kind
        ``related`` its non-primary end."""
        return primary == self.primary and related in self.non_primary


@dataclass(frozen=True, slots=True)
class ContextRelationship:
    """The relationship of an association with a context entity (a type with no kind) at
    either end: a free name, folded to lower case (``indicates``, ``uses``, ``c2-of``, ...).

    It has what callers read of an ``AssociationType`` (``name``, ``file_action``), so a match
    result is used the same way whichever it is; ``context`` tells them apart.
    """

    name: str
    file_action: ClassVar[bool] = False
    context: ClassVar[bool] = True


ASSOCIATED = ContextRelationship(DEFAULT_CONTEXT_RELATIONSHIP)

Match = AssociationType | ContextRelationship
"""What a pair of entities is associated as: a matrix type or a context relationship."""


def _default(
    name: str, primary: Kind, *non_primary: Kind, file_action: bool = False
) -> AssociationType:
    return AssociationType(name, primary, frozenset(non_primary), file_action)


_K = Kind
DEFAULT_ASSOCIATION_TYPES: tuple[AssociationType, ...] = (
    _default("Address to User Agent", _K.ADDRESS, _K.USER_AGENT),
    _default("ASN to Address", _K.ASN, _K.ADDRESS),
    _default("ASN to CIDR", _K.ASN, _K.CIDR),
    _default("CIDR to Address", _K.CIDR, _K.ADDRESS),
    _default("DNS PTR Record", _K.ADDRESS, _K.HOST),
    _default("Domain Registrant Email", _K.HOST, _K.EMAIL_ADDRESS),
    _default("File Download", _K.URL, _K.FILE),
    _default("URL Host", _K.URL, _K.HOST, _K.ADDRESS),
    _default("File Archive", _K.FILE, _K.FILE, file_action=True),
    _default("File DNS Query", _K.FILE, _K.HOST, file_action=True),
    _default("File Drop", _K.FILE, _K.FILE, file_action=True),
    _default("File Traffic", _K.FILE, _K.ADDRESS, _K.HOST, _K.URL, file_action=True),
    _default("File Mutex", _K.FILE, _K.MUTEX, file_action=True),
    _default("File Registry Key", _K.FILE, _K.REGISTRY_KEY, file_action=True),
    _default("File User Agent", _K.FILE, _K.USER_AGENT, file_action=True),
)
"""The association types and File Actions every deployment has; they cannot be removed."""


class RejectionCode(StrEnum):
    ENTITY_NOT_FOUND = "entity_not_found"
    ASSOCIATION_NOT_ALLOWED = "association_not_allowed"
    AMBIGUOUS_ASSOCIATION_TYPE = "ambiguous_association_type"
    UNKNOWN_ASSOCIATION_TYPE = "unknown_association_type"
    SELF_ASSOCIATION = "self_association"
    INVALID_ENTITY = "invalid_entity"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an association cannot be made: a permanent answer, never retried.

    ``err_code`` is ThreatConnect's code ("0x1001" for ``association_not_allowed``);
    ``candidates`` lists the fitting type names (sorted) of an ambiguous request; ``detail``
    says what the matrix allows between the two kinds of an ``association_not_allowed``.
    """

    code: RejectionCode
    message: str
    err_code: str | None = None
    candidates: tuple[str, ...] = field(default=())
    detail: str | None = None


NOT_ALLOWED = Rejection(
    RejectionCode.ASSOCIATION_NOT_ALLOWED, NOT_ALLOWED_MESSAGE, NOT_ALLOWED_ERR_CODE
)
SELF_ASSOCIATION = Rejection(
    RejectionCode.SELF_ASSOCIATION, "An entity cannot be associated with itself."
)


class InvalidAssociationType(ValueError):
    """A custom association type definition that cannot be added."""

    code = "invalid_association_type"


def _fold(name: str) -> str:
    return name.strip().casefold()


def _kind_of_id(eid: str) -> Kind | Rejection | None:
    """The kind of an entity ID's type, None for a kind-less type, a Rejection if no ID."""
    if len(eid) > 65 and eid[-65] == "-":
        row = CATALOGUE.get(eid[:-65])
        if row is not None:
            return row.kind
    return Rejection(
        RejectionCode.INVALID_ENTITY, f"{eid[:100]!r} is not an entity ID{id_hint(eid)}."
    )


def _type_label(type_name: str) -> str:
    """How a refusal's ``detail`` names an entity type: its kind, else the type itself."""
    row = CATALOGUE.get(type_name)
    if row is None or row.kind is None:
        return f"{type_name} (a type of no kind)"
    return row.kind.value


def _kind_label(eid: str) -> str:
    return _type_label(eid[:-65])


def _describe(named: AssociationType) -> str:
    """A type as a refusal's ``detail`` names it: "'URL Host' is URL -> Address, Host"."""
    return f"{named.name!r} is {named.primary} -> {', '.join(sorted(named.non_primary))}"


def _allowed(found: tuple[AssociationType, ...]) -> str:
    return " or ".join(t.name for t in found)


def _kind_of_type(type_name: str) -> Kind | Rejection | None:
    """The kind of an entity type, None for a kind-less type, a Rejection if no such type."""
    row = CATALOGUE.get(type_name)
    if row is None:
        return Rejection(
            RejectionCode.INVALID_ENTITY, f"{type_name[:100]!r} is not an entity type."
        )
    return row.kind


def is_context_type(type_name: str) -> bool:
    """Whether ``type_name`` is a known entity type with no kind (a context type)."""
    row = CATALOGUE.get(type_name)
    return row is not None and row.kind is None


class AssociationRules:
    """The default types plus ``custom`` ones, and how a pair of entities is matched to them.

    Raises ``InvalidAssociationType`` when two types share a name (compared case-insensitively).
    Instances are immutable; build a new one when the custom types change.
    """

    def __init__(self, custom: Iterable[AssociationType] = ()) -> None:
        self.types: tuple[AssociationType, ...] = (*DEFAULT_ASSOCIATION_TYPES, *custom)
        self._by_name: dict[str, AssociationType] = {}
        pairs: dict[tuple[Kind, Kind], list[AssociationType]] = {}
        for association_type in self.types:
            key = _fold(association_type.name)
            if key in self._by_name:
                raise InvalidAssociationType(
                    f"two association types are named {association_type.name!r}"
                )
            self._by_name[key] = association_type
            for related in association_type.non_primary:
                pairs.setdefault((association_type.primary, related), []).append(association_type)
        self._by_pair: dict[tuple[Kind, Kind], tuple[AssociationType, ...]] = {
            pair: tuple(sorted(found, key=lambda t: t.name)) for pair, found in pairs.items()
        }
        self._relationships: dict[str, ContextRelationship | Rejection] = {}

    def get(self, name: str) -> AssociationType | None:
        """The type called ``name`` (case-insensitive, surrounding spaces ignored), or None."""
        return self._by_name.get(_fold(name))

    def candidates(self, primary: Kind | None, related: Kind | None) -> tuple[AssociationType, ...]:
        """Every type (sorted by name) that allows ``primary`` -> ``related``."""
        if primary is None or related is None:
            return ()
        return self._by_pair.get((primary, related), ())

    @staticmethod
    def is_context_pair(entity_id: str, related_id: str) -> bool:
        """Whether either ID is of a context type (a known type with no kind): the pair
        takes a free relationship name instead of a matrix type."""
        return _kind_of_id(entity_id) is None or _kind_of_id(related_id) is None

    def relationship(self, type_name: str | None) -> ContextRelationship | Rejection:
        """The context relationship called ``type_name``: ``associated`` when it is None or
        blank, else the name trimmed and folded to lower case. A name of a matrix type or File
        Action (custom ones included) is ``association_not_allowed`` (0x1001), so that matrix
        names keep their meaning; a name longer than 128 characters or with control
        characters is ``unknown_association_type``."""
        if type_name is None:
            return ASSOCIATED
        found = self._relationships.get(type_name)
        if found is None:
            found = self._relationship(type_name)
            if len(self._relationships) < _MAX_CACHED_RELATIONSHIPS:
                self._relationships[type_name] = found
        return found

    def _relationship(self, type_name: str) -> ContextRelationship | Rejection:
        name = type_name.strip().lower()
        if not name:
            return ASSOCIATED
        if name == DEFAULT_CONTEXT_RELATIONSHIP:
            return ASSOCIATED
        if self.get(name) is not None:
            return NOT_ALLOWED
        if len(name) > MAX_TYPE_NAME_LENGTH or not name.isprintable():
            return Rejection(
                RejectionCode.UNKNOWN_ASSOCIATION_TYPE,
                f"{type_name.strip()[:128]!r} is not a relationship name: use 1 to "
                f"{MAX_TYPE_NAME_LENGTH} printable characters.",
            )
        return ContextRelationship(name)

    def match(
        self, entity_id: str, related_id: str, type_name: str | None = None
    ) -> Match | Rejection:
        """The type of the association ``entity_id`` (primary) -> ``related_id`` (non-primary).

        In order: equal IDs -> ``self_association``; an ID that is not one ->
        ``invalid_entity``; a context entity at either end -> the context relationship
        ``type_name`` (see ``relationship``); a ``type_name`` that names no type ->
        ``unknown_association_type``; a named type whose kinds do not fit, or no type fitting
        the pair of kinds -> ``association_not_allowed`` (err_code 0x1001); several fitting
        types and none named -> ``ambiguous_association_type`` with the candidates.
        """
        if entity_id == related_id:
            return SELF_ASSOCIATION
        primary = _kind_of_id(entity_id)
        if isinstance(primary, Rejection):
            return primary
        related = _kind_of_id(related_id)
        if isinstance(related, Rejection):
            return related
        labels = (_kind_label(entity_id), _kind_label(related_id))
        return self._match_kinds(primary, related, type_name, labels)

    def match_types(
        self, primary_type: str, related_type: str, type_name: str | None = None
    ) -> Match | Rejection:
        """``match`` for two entity type names instead of two IDs (e.g. ``"ip"``,
        ``"malware"``): what an association between entities of these types, in this
        direction, would be matched as. An unknown type is ``invalid_entity``. It cannot tell
        a self-association (that needs the IDs); everything else is decided as by ``match``.
        """
        primary = _kind_of_type(primary_type)
        if isinstance(primary, Rejection):
            return primary
        related = _kind_of_type(related_type)
        if isinstance(related, Rejection):
            return related
        labels = (_type_label(primary_type), _type_label(related_type))
        return self._match_kinds(primary, related, type_name, labels)

    def _match_kinds(
        self,
        primary: Kind | None,
        related: Kind | None,
        type_name: str | None,
        labels: tuple[str, str],
    ) -> Match | Rejection:
        if primary is None or related is None:
            return self._context(type_name, labels)
        if type_name is not None:
            named = self._named(type_name)
            if isinstance(named, Rejection) or named.fits(primary, related):
                return named
            return self.not_allowed(primary, related, labels, named)
        found = self.candidates(primary, related)
        if len(found) == 1:
            return found[0]
        return _ambiguous(found) if found else self.not_allowed(primary, related, labels)

    def _context(self, type_name: str | None, labels: tuple[str, str]) -> Match | Rejection:
        """``relationship``, with a 0x1001 refusal's ``detail`` naming the two ends and the
        matrix type whose name was given."""
        found = self.relationship(type_name)
        if not isinstance(found, Rejection) or found.code is not NOT_ALLOWED.code:
            return found
        named = self.get(type_name or "")
        what = repr(type_name) if named is None else _describe(named)
        first, second = labels
        detail = (
            f"{first} -> {second}: {what}, a matrix type, cannot name an association with a "
            f"context entity; give another relationship name, or none for "
            f"{DEFAULT_CONTEXT_RELATIONSHIP!r}"
        )
        return Rejection(NOT_ALLOWED.code, NOT_ALLOWED.message, NOT_ALLOWED.err_code, detail=detail)

    def not_allowed(
        self,
        primary: Kind,
        related: Kind,
        labels: tuple[str, str],
        named: AssociationType | None = None,
    ) -> Rejection:
        """``association_not_allowed`` (0x1001) for ``primary`` -> ``related`` (``labels``:
        how the two ends are named), its ``detail`` naming the two kinds in that order and what
        the matrix allows between them, e.g. "Address -> ASN: no type allows it; ASN -> Address
        is ASN to Address"."""
        first, second = labels
        forward = self.candidates(primary, related)
        backward = self.candidates(related, primary)
        parts = []
        if named is not None:
            parts.append(_describe(named))
        if forward:
            parts.append(f"{first} -> {second} is {_allowed(forward)}")
        else:
            parts.append(
                "no type allows it" if named is None else f"no type allows {first} -> {second}"
            )
        if backward and first != second:
            parts.append(f"{second} -> {first} is {_allowed(backward)}")
        detail = f"{first} -> {second}: " + "; ".join(parts)
        return Rejection(NOT_ALLOWED.code, NOT_ALLOWED.message, NOT_ALLOWED.err_code, detail=detail)

    def match_nested(
        self, parent_id: str, child_id: str, type_name: str | None = None, *, pooled: bool = False
    ) -> tuple[Match, str, str] | Rejection:
        """Match a nested child to its parent in either orientation.

        Returns ``(type, primary_id, related_id)``. A named type is tried parent -> child
        first (so the parent stays primary when both fit), then child -> parent. Without a
        name, the types fitting parent -> child are chosen from when there are any, else those
        fitting child -> parent: exactly one is chosen, several in the same orientation are
        ``ambiguous_association_type`` (SPEC §3: a URL with a nested file is a File Download,
        not File Traffic the other way round). A context entity at either end gives a context
        relationship, parent -> child (direction as given). Other rejections are as for
        ``match``. With ``pooled`` (two ends that are no parent and child, such as a STIX
        relationship's) the types fitting either orientation are pooled instead: several are
        ambiguous.
        """
        if parent_id == child_id:
            return SELF_ASSOCIATION
        parent_kind, child_kind = _kind_of_id(parent_id), _kind_of_id(child_id)
        if isinstance(parent_kind, Rejection):
            return parent_kind
        if isinstance(child_kind, Rejection):
            return child_kind
        if parent_kind is None or child_kind is None:
            context = self._context(type_name, (_kind_label(parent_id), _kind_label(child_id)))
            if isinstance(context, Rejection):
                return context
            return context, parent_id, child_id
        if type_name is not None:
            forward = self.match(parent_id, child_id, type_name)
            if not isinstance(forward, Rejection):
                return forward, parent_id, child_id
            if forward.code is not RejectionCode.ASSOCIATION_NOT_ALLOWED:
                return forward
            backward = self.match(child_id, parent_id, type_name)
            return (
                (backward, child_id, parent_id) if not isinstance(backward, Rejection) else forward
            )
        down = self.candidates(parent_kind, child_kind)
        if pooled:
            up = self.candidates(child_kind, parent_kind) if parent_kind != child_kind else ()
        else:
            up = self.candidates(child_kind, parent_kind) if not down else ()
        chosen = (*down, *up)
        if len(chosen) == 1:
            return (down[0], parent_id, child_id) if down else (up[0], child_id, parent_id)
        if not chosen:
            labels = (_kind_label(parent_id), _kind_label(child_id))
            return self.not_allowed(parent_kind, child_kind, labels)
        return _ambiguous(tuple(sorted(chosen, key=lambda t: t.name)))

    def _named(self, type_name: str) -> AssociationType | Rejection:
        found = self.get(type_name)
        if found is None:
            return Rejection(
                RejectionCode.UNKNOWN_ASSOCIATION_TYPE,
                f"There is no association type named {type_name.strip()[:128]!r}.",
            )
        return found


def _ambiguous(candidates: tuple[AssociationType, ...]) -> Rejection:
    names = tuple(t.name for t in candidates)
    return Rejection(
        RejectionCode.AMBIGUOUS_ASSOCIATION_TYPE,
        f"Several association types fit these entities; name one of: {', '.join(names)}.",
        candidates=names,
    )


def _kind(value: str | Kind) -> Kind:
    if isinstance(value, Kind):
        return value
    for kind in Kind:
        if kind.value.casefold() == str(value).strip().casefold():
            return kind
    raise InvalidAssociationType(
        f"{value!r} is not a kind; use one of: {', '.join(k.value for k in Kind)}"
    )


def validate_custom_type(
    name: str,
    primary: str | Kind,
    non_primary: Iterable[str | Kind],
    file_action: bool,
    rules: AssociationRules,
) -> AssociationType:
    """A new custom type, checked against ``rules``; raises ``InvalidAssociationType``.

    The name is trimmed and must be 1 to 128 printable characters, unique case-insensitively
    among all existing types, and not ``associated`` (the default context relationship; any
    other name a custom type takes is no longer free for context associations); kinds are
    ``Kind`` values (case-insensitive); at least one non-primary kind; a File Action must have
    primary ``File``.
    """
    clean = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(clean) <= MAX_TYPE_NAME_LENGTH:
        raise InvalidAssociationType(
            f"the name must be 1 to {MAX_TYPE_NAME_LENGTH} characters long"
        )
    if not clean.isprintable():
        raise InvalidAssociationType("the name must not contain control characters")
    if rules.get(clean) is not None:
        raise InvalidAssociationType(f"an association type named {clean!r} already exists")
    if clean.lower() == DEFAULT_CONTEXT_RELATIONSHIP:
        raise InvalidAssociationType(
            f"{DEFAULT_CONTEXT_RELATIONSHIP!r} is the default relationship of context "
            "associations (a pair with a context entity at either end takes any name that is "
            "not a matrix type's); choose another name"
        )
    primary_kind = _kind(primary)
    related = frozenset(_kind(kind) for kind in non_primary)
    if not related:
        raise InvalidAssociationType("at least one non-primary kind is required")
    if file_action and primary_kind is not Kind.FILE:
        raise InvalidAssociationType("a File Action must have primary kind File")
    return AssociationType(clean, primary_kind, related, bool(file_action), custom=True)
