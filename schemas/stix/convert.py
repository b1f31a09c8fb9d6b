"""A STIX 2.1 bundle -> entities and associations of our vocabulary, every object accounted for.

``convert_bundle(objects, rules)`` reads the objects of a bundle (parsed JSON, no library
objects: see ``schemas.stix.patterns`` for why) and returns a ``Conversion``:

- entities: from observables and the domain objects of ``vocabulary.SDO_TYPES``, from the
  equality comparisons of indicator patterns, from the attributes of ``x-misp-object``s; one per
  entity ID (attributes merged), with the provenance of every source that named it;
- links: from relationship objects (every entity the source stands for -> every entity the
  target stands for: an indicator stands for its pattern's entities, an observed-data for its
  objects'), from references embedded in observables (``resolves_to_refs``, ``dst_ref``, ...),
  from a pattern's own references, and inside MISP ``domain-ip`` objects. Each is matched as in
  SPEC §2: a pair whose ends both have a kind by the matrix, in either orientation (a STIX
  relationship name breaks a tie where it names a preferred type, ``vocabulary.PREFERRED_TYPES``);
  any other pair as a context association named by the relationship;
- outcomes: one per object, by position: ``entity`` (it named at least one entity),
  ``association`` (it named none but made a link) or ``not_represented`` with a reason code
  (``unsupported_type``, ``pattern_too_complex``, ``unsupported_pattern``, ``invalid_pattern``,
  ``dangling_reference``, ``association_not_allowed``, ``self_association``, ``invalid_entity``,
  ``provenance`` for identities and markings, which become the source and TLP of others, ...);
- notes: what a represented object carried that could not be kept (a private address among a
  pattern's, a comparison on a custom property, a link the matrix refuses), counted by reason.

Nothing here does I/O; the same conversion serves ``POST /stix`` and ``assoc-ingest import
stix``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from schemas.catalogue import CATALOGUE, NormalisationError
from schemas.ids import entity_id_of_normalised
from schemas.messages import Tlp
from schemas.normalise import normalise
from schemas.rules import AssociationRules, Match, Rejection, RejectionCode
from schemas.stix.observables import (
    Description,
    EntitySpec,
    RefLink,
    describe,
    domain_resolutions,
    objects_of_conjunction,
    simple_entity,
    unsupported,
)
from schemas.stix.patterns import Conjunction, PatternProblem, observables
from schemas.stix.provenance import (
    Provenance,
    listed_provenances,
    provenance_of,
    time_pair,
    tlp_of_marking,
)
from schemas.stix.vocabulary import PREFERRED_TYPES, slug

Outcome = Literal["entity", "association", "not_represented"]

CONTAINERS: Final = ("observed-data", "report", "grouping", "note", "opinion")
"""Object types whose ``object_refs`` lend their provenance to the objects they list."""

_EXAMPLE_LENGTH: Final = 120


@dataclass(slots=True)
class ConvertedEntity:
    """One entity: ID, type, normalised main value, attributes, and provenance per source."""

    id: str
    type: str
    value: str
    attributes: dict[str, Any]
    provenance: dict[str | None, Provenance] = field(default_factory=dict)


@dataclass(slots=True)
class ConvertedLink:
    """One association, oriented primary -> non-primary, with its type's canonical name (or
    the relationship name of a context association) and provenance per source."""

    entity_id: str
    related_id: str
    association_type: str
    provenance: dict[str | None, Provenance] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObjectOutcome:
    """The account of the object at ``index`` of the bundle."""

    index: int
    stix_id: str | None
    stix_type: str | None
    outcome: Outcome
    code: str | None = None
    message: str | None = None


@dataclass(slots=True)
class Conversion:
    entities: list[ConvertedEntity]
    links: list[ConvertedLink]
    outcomes: list[ObjectOutcome]
    notes: Counter[str]
    """Values and links not kept, by reason code (whether or not their object was
    represented otherwise)."""
    examples: dict[str, str] = field(default_factory=dict)
    """One message per reason code of ``notes``."""

    def counts(self) -> dict[str, int]:
        """Objects per outcome: ``{"total", "entity", "association", "not_represented"}``."""
        found = Counter(outcome.outcome for outcome in self.outcomes)
        return {
            "total": len(self.outcomes),
            "entity": found["entity"],
            "association": found["association"],
            "not_represented": found["not_represented"],
        }

    def reasons(self) -> dict[str, int]:
        """Objects not represented, per reason code."""
        return dict(Counter(o.code or "" for o in self.outcomes if o.outcome == "not_represented"))


Problem = tuple[str, str]


class _Bundle:
    """The state of one conversion."""

    def __init__(self, objects: Sequence[Any], rules: AssociationRules) -> None:
        self.objects = objects
        self.rules = rules
        self.by_id: dict[str, Mapping[str, Any]] = {}
        self.identities: dict[str, str] = {}
        self.markings: dict[str, Tlp] = {}
        self.container_of: dict[str, Mapping[str, Any]] = {}
        self.entities: dict[str, ConvertedEntity] = {}
        self.links: dict[tuple[str, str, str], ConvertedLink] = {}
        self.notes: Counter[str] = Counter()
        self._normalised: dict[tuple[str, str], tuple[str, str] | NormalisationError] = {}
        self._stated: dict[tuple[Any, ...], Provenance] = {}
        self._inherited: dict[tuple[int, int], Provenance] = {}
        self._stands_for: dict[str, tuple[list[str], Problem | None]] = {}
        self._provenance: dict[int, Provenance] = {}
        self._descriptions: dict[int, Description] = {}
        self._conjunctions: dict[
            tuple[Conjunction, int], tuple[list[str], list[Problem], list[str]]
        ] = {}
        self.examples: dict[str, str] = {}
        self._matches: dict[tuple[str, str, str], tuple[Match, bool] | Rejection] = {}
        self._slugs = {slug(t.name): t.name for t in rules.types}

    # ---- the bundle's index ----------------------------------------------------------------

    def index(self) -> None:
        containers: dict[str, list[Mapping[str, Any]]] = {kind: [] for kind in CONTAINERS}
        for obj in self.objects:
            if not isinstance(obj, dict):
                continue
            oid = obj.get("id")
            if isinstance(oid, str):
                known = self.by_id.get(oid)
                if known is None or str(obj.get("modified", "")) >= str(known.get("modified", "")):
                    self.by_id[oid] = obj
            object_type = obj.get("type")
            if object_type == "identity" and isinstance(oid, str):
                name = obj.get("name")
                if isinstance(name, str) and name.strip():
                    self.identities[oid] = name.strip()
            elif object_type == "marking-definition" and isinstance(oid, str):
                level = tlp_of_marking(obj)
                if level is not None:
                    self.markings[oid] = level
            elif isinstance(object_type, str) and object_type in containers:
                containers[object_type].append(obj)
        # Containers lend provenance: an observed-data first, then reports and groupings.
        for listed in containers.values():
            for obj in listed:
                refs = obj.get("object_refs")
                for ref in refs if isinstance(refs, list) else ():
                    if isinstance(ref, str):
                        self.container_of.setdefault(ref, obj)

    def stated(self, obj: Mapping[str, Any]) -> Provenance:
        """``provenance_of(obj)``, one instance per distinct statement (most objects of a
        bundle share their creator, markings and times)."""
        get = obj.get
        markings = get("object_marking_refs")
        pair = time_pair(obj)
        key = (
            get("created_by_ref"),
            tuple(markings) if isinstance(markings, list) else markings,
            get("confidence"),
            None if pair is None else get(pair[0]),
            None if pair is None else get(pair[1]),
        )
        try:
            found = self._stated.get(key)
        except TypeError:  # an unhashable value: no sharing
            return provenance_of(obj, self.identities, self.markings)
        if found is None:
            found = self._stated[key] = provenance_of(obj, self.identities, self.markings)
        return found

    def provenance(self, obj: Mapping[str, Any]) -> Provenance:
        key = id(obj)
        found = self._provenance.get(key)
        if found is None:
            found = self.stated(obj)
            oid = obj.get("id")
            container = self.container_of.get(oid) if isinstance(oid, str) else None
            seen = {key}
            while container is not None and id(container) not in seen:
                seen.add(id(container))
                lent = self.stated(container)
                # Both are kept by the caches of this conversion: their ids stay theirs.
                pair = (id(found), id(lent))
                inherited = self._inherited.get(pair)
                if inherited is None:
                    inherited = self._inherited[pair] = found.inheriting(lent)
                found = inherited
                cid = container.get("id")
                container = self.container_of.get(cid) if isinstance(cid, str) else None
            self._provenance[key] = found
        return found

    # ---- entities ------------------------------------------------------------------------------

    def entity(self, spec: EntitySpec, provenance: Provenance) -> str | Problem:
        """Add the entity ``spec`` names; its ID, or why it cannot be one."""
        key = (spec.type, spec.value)
        known_value = self._normalised.get(key)
        if known_value is None:
            try:
                text = normalise(spec.type, spec.value)
                known_value = (text, entity_id_of_normalised(spec.type, text))
            except NormalisationError as exc:
                known_value = exc
            self._normalised[key] = known_value
        if isinstance(known_value, NormalisationError):
            return ("invalid_entity", f"{spec.value[:80]!r}: {known_value}")
        normalised, eid = known_value
        entity = self.entities.get(eid)
        if entity is None:
            attributes = dict(spec.attributes)
            attributes[spec.type] = normalised
            entity = self.entities[eid] = ConvertedEntity(eid, spec.type, normalised, attributes)
        else:
            for name, value in spec.attributes.items():
                entity.attributes.setdefault(name, value)
        known = entity.provenance.get(provenance.source)
        if known is not provenance:
            entity.provenance[provenance.source] = (
                provenance if known is None else known.merged(provenance)
            )
        return eid

    def entities_of(
        self, specs: Iterable[EntitySpec], provenance: Provenance
    ) -> tuple[list[str], Problem | None]:
        ids: list[str] = []
        problem: Problem | None = None
        for spec in specs:
            found = self.entity(spec, provenance)
            if isinstance(found, str):
                ids.append(found)
            else:
                problem = problem or found
                self.note(found)
        return ids, problem

    def note(self, problem: Problem) -> None:
        code, message = problem
        self.notes[code] += 1
        self.examples.setdefault(code, message)

    # ---- what an object stands for ---------------------------------------------------------

    def describe(self, obj: Mapping[str, Any]) -> Description:
        key = id(obj)
        found = self._descriptions.get(key)
        if found is None:
            found = self._descriptions[key] = describe(obj)
        return found

    def stands_for(self, ref: str) -> tuple[list[str], Problem | None]:
        """The entity IDs the object ``ref`` stands for, or why none (memoised)."""
        found = self._stands_for.get(ref)
        if found is None:
            self._stands_for[ref] = ([], ("reference_cycle", f"{ref} refers back to itself"))
            obj = self.by_id.get(ref)
            if obj is None:
                found = ([], ("dangling_reference", f"{ref[:100]} is not in the bundle"))
            else:
                found = self._own_entities(obj)
            self._stands_for[ref] = found
        return found

    def _own_entities(self, obj: Mapping[str, Any]) -> tuple[list[str], Problem | None]:
        object_type = obj.get("type")
        provenance = self.provenance(obj)
        if object_type == "indicator":
            return self._indicator(obj, provenance)
        if object_type == "observed-data":
            return self._observed_data(obj)
        if object_type in ("identity", "marking-definition"):
            return [], unsupported(object_type).problem
        description = self.describe(obj)
        listed = listed_provenances(obj)
        for stated in listed[1:]:  # every source an export of ours lists
            self.entities_of(description.entities, stated)
        ids, problem = self.entities_of(description.entities, listed[0] if listed else provenance)
        return ids, problem or description.problem

    def _indicator(
        self, obj: Mapping[str, Any], provenance: Provenance
    ) -> tuple[list[str], Problem | None]:
        pattern_type = obj.get("pattern_type", "stix")
        pattern = obj.get("pattern")
        if pattern_type != "stix" or not isinstance(pattern, str):
            return [], (
                "unsupported_pattern",
                f"a {str(pattern_type)[:32]} pattern is not a STIX pattern",
            )
        try:
            conjunctions = observables(pattern)
        except PatternProblem as exc:
            return [], (exc.code, exc.message)
        ids: list[str] = []
        ignored_paths: list[str] = []
        problem: Problem | None = None
        for conjunction in conjunctions:
            # Publishers repeat the same observables across indicators (FireEye: 2,504
            # conjunctions, 822 distinct): one with the same provenance adds nothing new.
            key = (conjunction, id(provenance))
            done = self._conjunctions.get(key)
            if done is None:
                done = self._conjunctions[key] = self._conjunction(conjunction, provenance)
            found, failures, ignored = done
            ids += found
            for failure in failures:
                problem = problem or failure
                self.note(failure)
            ignored_paths += ignored
        for path in ignored_paths:
            self.note(("unrepresented_comparison", f"a comparison on {path[:_EXAMPLE_LENGTH]}"))
        unique = list(dict.fromkeys(ids))
        if not unique and problem is None:
            shown = ", ".join(sorted(set(ignored_paths))[:3])
            problem = (
                "unsupported_pattern",
                f"the pattern compares no property that is represented ({shown})",
            )
        return unique, problem

    def _conjunction(
        self, conjunction: Conjunction, provenance: Provenance
    ) -> tuple[list[str], list[Problem], list[str]]:
        """The entities of one conjunction of a pattern, with the links among them added: their
        IDs, what could not be kept (values and links), and the paths of comparisons on
        properties that are not represented."""
        single = simple_entity(conjunction)
        if single is not None:
            found = self.entity(single, provenance)
            return ([found], [], []) if isinstance(found, str) else ([], [found], [])
        failures: list[Problem] = []
        resolved = domain_resolutions(conjunction)
        if resolved is not None:
            domain, addresses = resolved
            domain_ids = self._kept((domain,), provenance, failures)
            address_ids = self._kept(addresses, provenance, failures)
            for domain_id in domain_ids:
                for address_id in address_ids:
                    failed = self.link(domain_id, address_id, "resolves-to", provenance)
                    if failed is not None:
                        failures.append(failed)
            return domain_ids + address_ids, failures, []
        pseudo, ignored = objects_of_conjunction(conjunction)
        local: dict[str, list[str]] = {}
        ids: list[str] = []
        descriptions = [describe(made) for made in pseudo]
        for made, description in zip(pseudo, descriptions, strict=True):
            local[made["id"]] = found_ids = self._kept(description.entities, provenance, failures)
            ids += found_ids
        for made, description in zip(pseudo, descriptions, strict=True):
            for link in description.links:
                sources = local.get(made["id"], []) if link.source is None else []
                targets = local.get(link.target, []) if isinstance(link.target, str) else []
                for source in sources:
                    for target in targets:
                        failed = self.link(source, target, link.name, provenance)
                        if failed is not None:
                            failures.append(failed)
        return ids, failures, ignored

    def _kept(
        self, specs: Iterable[EntitySpec], provenance: Provenance, failures: list[Problem]
    ) -> list[str]:
        ids: list[str] = []
        for spec in specs:
            found = self.entity(spec, provenance)
            if isinstance(found, str):
                ids.append(found)
            else:
                failures.append(found)
        return ids

    def _observed_data(self, obj: Mapping[str, Any]) -> tuple[list[str], Problem | None]:
        refs = obj.get("object_refs")
        ids: list[str] = []
        problem: Problem | None = None
        for ref in refs if isinstance(refs, list) else ():
            if isinstance(ref, str):
                found, failed = self.stands_for(ref)
                ids += found
                problem = problem or failed
        embedded = obj.get("objects")
        if isinstance(embedded, dict):  # STIX 2.0 style: the observables inside the object
            provenance = self.provenance(obj)
            for value in embedded.values():
                if isinstance(value, dict):
                    description = describe(value)
                    found, failed = self.entities_of(description.entities, provenance)
                    ids += found
                    problem = problem or failed or description.problem
        if not ids and problem is None:
            problem = ("no_entity", "the observed-data refers to no object")
        return list(dict.fromkeys(ids)), problem

    # ---- links ---------------------------------------------------------------------------------

    def match(self, source: str, target: str, name: str) -> tuple[Match, bool] | Rejection:
        """The type of ``source -> target`` called ``name`` and whether it is stored reversed
        (decided by the two types and the name alone, so remembered per triple)."""
        key = (source[:-65], target[:-65], name)
        found = self._matches.get(key)
        if found is None:
            found = self._matches[key] = self._match(key[0], key[1], name)
        return found

    def _match(
        self, source_type: str, target_type: str, name: str
    ) -> tuple[Match, bool] | Rejection:
        """``match`` for two entity types: the rules decide on two distinct IDs of them."""
        source, target = f"{source_type}-{'0' * 64}", f"{target_type}-{'f' * 64}"
        if CATALOGUE[source_type].kind is None or CATALOGUE[target_type].kind is None:
            # A context association: named by the relationship, direction kept as given.
            matched = self.rules.match(source, target, name)
            return matched if isinstance(matched, Rejection) else (matched, False)
        named = self._slugs.get(name.lower())
        if named is not None:  # a relationship named after an association type (an export)
            exact = self.rules.match_nested(source, target, named)
            if not isinstance(exact, Rejection):
                return exact[0], exact[1] != source
        nested = self.rules.match_nested(source, target, pooled=True)
        if (
            isinstance(nested, Rejection)
            and nested.code is RejectionCode.AMBIGUOUS_ASSOCIATION_TYPE
        ):
            for preferred in PREFERRED_TYPES.get(name.lower(), ()):
                attempt = self.rules.match_nested(source, target, preferred)
                if not isinstance(attempt, Rejection):
                    nested = attempt
                    break
        if isinstance(nested, Rejection):
            return nested
        return nested[0], nested[1] != source

    def link(self, source: str, target: str, name: str, provenance: Provenance) -> Problem | None:
        """Add the association ``source -> target`` called ``name``; None, or why not."""
        if source == target:
            return ("self_association", "both ends are the same entity")
        matched = self.match(source, target, name)
        if isinstance(matched, Rejection):
            detail = f"{source.rsplit('-', 1)[0]} -> {target.rsplit('-', 1)[0]}"
            return (matched.code.value, f"{matched.message} ({detail}, {name!r})")
        association_type, reversed_ = matched
        primary, related = (target, source) if reversed_ else (source, target)
        key = (primary, related, association_type.name)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = ConvertedLink(primary, related, association_type.name)
        known = link.provenance.get(provenance.source)
        if known is not provenance:
            link.provenance[provenance.source] = (
                provenance if known is None else known.merged(provenance)
            )
        return None

    def link_or_note(self, source: str, target: str, name: str, provenance: Provenance) -> bool:
        problem = self.link(source, target, name, provenance)
        if problem is not None:
            self.note(problem)
        return problem is None

    def links_between(
        self,
        sources: Sequence[str],
        targets: Sequence[str],
        name: str,
        provenance: Provenance,
    ) -> tuple[int, Problem | None]:
        made, first = 0, None
        for source in sources:
            for target in targets:
                problem = self.link(source, target, name, provenance)
                if problem is None:
                    made += 1
                else:
                    first = first or problem
                    self.note(problem)
        return made, first

    # ---- one object ------------------------------------------------------------------------

    def safe_account(self, index: int, obj: Any) -> ObjectOutcome:
        """``account``, or ``not_represented`` when references chain too deep to follow."""
        try:
            return self.account(index, obj)
        except RecursionError:
            oid = obj.get("id") if isinstance(obj, dict) else None
            return ObjectOutcome(
                index,
                oid if isinstance(oid, str) else None,
                obj.get("type")
                if isinstance(obj, dict) and isinstance(obj.get("type"), str)
                else None,
                "not_represented",
                "too_deep",
                "its references chain too deep to follow",
            )

    def account(self, index: int, obj: Any) -> ObjectOutcome:
        if not isinstance(obj, dict):
            return ObjectOutcome(
                index, None, None, "not_represented", "invalid_object", "not a JSON object"
            )
        oid = obj.get("id") if isinstance(obj.get("id"), str) else None
        object_type = obj.get("type") if isinstance(obj.get("type"), str) else None
        if object_type is None:
            return ObjectOutcome(
                index, oid, None, "not_represented", "invalid_object", "the object has no type"
            )
        if object_type in ("identity", "marking-definition"):
            return self._provenance_object(index, oid, obj)
        if object_type == "relationship":
            made, problem = self._relationship(obj)
            entities: list[str] = []
        else:
            if oid is not None and self.by_id.get(oid) is obj:
                entities, problem = self.stands_for(oid)
            else:  # no ID, or an older version of an object given twice
                entities, problem = self._own_entities(obj)
            made, link_problem = self._embedded_links(obj, entities)
            problem = problem or link_problem
        if entities:
            return ObjectOutcome(index, oid, object_type, "entity")
        if made:
            return ObjectOutcome(index, oid, object_type, "association")
        code, message = problem or ("no_entity", "the object names no entity")
        return ObjectOutcome(index, oid, object_type, "not_represented", code, message)

    def _provenance_object(
        self, index: int, oid: str | None, obj: Mapping[str, Any]
    ) -> ObjectOutcome:
        object_type = str(obj["type"])
        if oid in self.identities:
            code, message = "provenance", "the identity names the source of what it created"
        elif oid in self.markings:
            code, message = "provenance", "the TLP marking gives the TLP of what it marks"
        elif object_type == "marking-definition":
            code, message = "unsupported_type", "only TLP marking definitions are kept"
        else:
            code, message = "unsupported_type", "an identity without a name names no source"
        return ObjectOutcome(index, oid, object_type, "not_represented", code, message)

    def _relationship(self, obj: Mapping[str, Any]) -> tuple[int, Problem | None]:
        name = obj.get("relationship_type")
        if not isinstance(name, str) or not name.strip():
            return 0, ("invalid_object", "the relationship has no relationship_type")
        ends: list[list[str]] = []
        for side in ("source_ref", "target_ref"):
            ref = obj.get(side)
            if not isinstance(ref, str):
                return 0, ("invalid_object", f"the relationship has no {side}")
            found, problem = self.stands_for(ref)
            if not found:
                code, message = problem or ("no_entity", "it names no entity")
                return 0, (code, f"its {side} {ref[:100]} is not represented: {message}")
            ends.append(found)
        return self.links_between(ends[0], ends[1], name.strip(), self.provenance(obj))

    def _embedded_links(
        self, obj: Mapping[str, Any], entities: Sequence[str]
    ) -> tuple[int, Problem | None]:
        object_type = obj.get("type")
        if object_type in ("indicator", "observed-data"):
            return 0, None
        links: Sequence[RefLink] = self.describe(obj).links
        made, first = 0, None
        provenance = self.provenance(obj)
        for link in links:
            if link.source is None:
                sources = list(entities)
            else:
                sources, problem = self.stands_for(link.source)
                if problem is not None and not sources:
                    first = first or problem
                    self.note(problem)
                    continue
            if isinstance(link.target, EntitySpec):
                target = self.entity(link.target, provenance)
                targets, problem = ([target], None) if isinstance(target, str) else ([], target)
            else:
                targets, problem = self.stands_for(link.target)
            if not targets:
                problem = problem or ("no_entity", "the reference names no entity")
                first = first or problem
                self.note(problem)
                continue
            count, problem = self.links_between(sources, targets, link.name, provenance)
            made += count
            first = first or problem
        return made, first


def convert_bundle(objects: Sequence[Any], rules: AssociationRules | None = None) -> Conversion:
    """Convert the objects of a bundle (see the module docstring); ``rules`` default to the
    default association types."""
    bundle = _Bundle(objects, rules if rules is not None else AssociationRules())
    bundle.index()
    outcomes = [bundle.safe_account(index, obj) for index, obj in enumerate(objects)]
    return Conversion(
        list(bundle.entities.values()),
        list(bundle.links.values()),
        outcomes,
        bundle.notes,
        bundle.examples,
    )


def bundle_objects(document: Any) -> list[Any]:
    """The objects of a parsed STIX document: a bundle's ``objects``, or a bare JSON array.

    Raises ``ValueError`` for anything else (the message says what was expected).
    """
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and document.get("type") == "bundle":
        objects = document.get("objects", [])
        if isinstance(objects, list):
            return objects
        raise ValueError("a bundle's objects must be a JSON array")
    raise ValueError('expected a STIX bundle ({"type": "bundle", ...}) or a JSON array of objects')


__all__ = [
    "Conversion",
    "ConvertedEntity",
    "ConvertedLink",
    "Description",
    "ObjectOutcome",
    "bundle_objects",
    "convert_bundle",
    "unsupported",
]
