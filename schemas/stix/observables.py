"""What one STIX object stands for: the entities it names and the links its references make.

``describe(obj)`` reads one object (a parsed JSON dict, as found in a bundle, or built from an
indicator pattern by ``objects_of_conjunction``) and returns its entities (type, raw value,
attributes: not normalised yet) and its reference links, or why it names no entity. It knows
nothing of the rest of the bundle: references stay object IDs for the converter to resolve.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.catalogue import CATALOGUE, NormalisationError
from schemas.normalise import normalise
from schemas.stix.patterns import Conjunction, PathStep
from schemas.stix.vocabulary import (
    ATTRIBUTES_PROPERTY,
    EMBEDDED_REFS,
    ENTITY_TYPE_PROPERTY,
    GENERIC_OBJECT_TYPE,
    HASH_NAMES,
    HASH_TYPES,
    MALWARE_FAMILY_TYPE,
    MISP_ATTRIBUTE_TYPES,
    MISP_SIGNATURE_TYPE,
    OBSERVABLE_ATTRIBUTES,
    SDO_TYPES,
    SIMPLE_OBSERVABLES,
    USER_AGENT_PATH,
)

_HASH_ORDER = {type_name: rank for rank, type_name in enumerate(HASH_TYPES.values())}


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """An entity named by a STIX object, before normalisation."""

    type: str
    value: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefLink:
    """A link made by a reference: ``source`` (None: the describing object itself, else an
    object ID) -> ``target`` (an object ID, or an entity named inline), called ``name``."""

    source: str | None
    target: str | EntitySpec
    name: str


@dataclass(frozen=True, slots=True)
class Description:
    """What an object stands for; ``problem`` is ``(code, message)`` when it names nothing
    (``entities`` empty) and makes no link either."""

    entities: tuple[EntitySpec, ...] = ()
    links: tuple[RefLink, ...] = ()
    problem: tuple[str, str] | None = None


def unsupported(object_type: str) -> Description:
    """The description of an object of a type that names no entity."""
    article = "an" if object_type[:1] in "aeiou" else "a"
    return Description(
        problem=("unsupported_type", f"{article} {object_type[:64]} object has no entity type")
    )


def describe(obj: Mapping[str, Any]) -> Description:
    """The entities and reference links of one STIX object (see the module docstring)."""
    object_type = obj.get("type")
    if not isinstance(object_type, str):
        return Description(problem=("invalid_object", "the object has no type"))
    describer = _DESCRIBERS.get(object_type)
    if describer is not None:
        return describer(obj, object_type)
    if object_type in SIMPLE_OBSERVABLES:
        return _simple(obj, object_type)
    if object_type in SDO_TYPES:
        return _domain_object(obj, object_type)
    return unsupported(object_type)


# ---- one function per shape of object ------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else nothing (publishers get types wrong)."""
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _own_attributes(obj: Mapping[str, Any], object_type: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for prop, name in OBSERVABLE_ATTRIBUTES.get(object_type, {}).items():
        value = obj.get(prop)
        if value is not None and value != "":
            attributes[name] = value
    attributes.update(exported_attributes(obj))
    return attributes


MAX_ATTRIBUTE_DEPTH = 8
"""Levels of lists and objects kept in ``x_assoc_ingest_attributes`` (deeper: dropped)."""


def exported_attributes(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ``x_assoc_ingest_attributes`` of an object (an export of ours), when shallow."""
    exported = obj.get(ATTRIBUTES_PROPERTY)
    if not isinstance(exported, dict) or _deeper_than(exported, MAX_ATTRIBUTE_DEPTH):
        return {}
    return {str(name): value for name, value in exported.items()}


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _typed(obj: Mapping[str, Any], default: str) -> str:
    """``default``, unless the object names another catalogue type of ours (an export)."""
    named = obj.get(ENTITY_TYPE_PROPERTY)
    return named if isinstance(named, str) and named in CATALOGUE else default


def _no_value(object_type: str, prop: str) -> Description:
    return Description(
        problem=("invalid_entity", f"the {object_type} object has no {prop} to identify it")
    )


def _simple(obj: Mapping[str, Any], object_type: str) -> Description:
    prop, type_name = SIMPLE_OBSERVABLES[object_type]
    value = _text(obj.get(prop))
    if value is None:
        return _no_value(object_type, prop)
    if object_type in ("ipv4-addr", "ipv6-addr") and "/" in value:
        type_name = "cidr"
    entity = EntitySpec(_typed(obj, type_name), value, _own_attributes(obj, object_type))
    return Description((entity,), tuple(_embedded(obj, object_type)))


def _hash_entities(hashes: Any) -> tuple[str, str, dict[str, str]] | None:
    """(main hash type, its value, the other hashes by type) of a ``hashes`` dictionary."""
    if not isinstance(hashes, dict):
        return None
    found: dict[str, str] = {}
    for name, value in hashes.items():
        type_name = HASH_NAMES.get(str(name).upper().replace("-", "").replace("_", ""))
        if type_name is not None and isinstance(value, str) and value.strip():
            found.setdefault(type_name, value)
    if not found:
        return None
    main = min(found, key=_HASH_ORDER.__getitem__)
    others = {name: value for name, value in found.items() if name != main}
    return main, found[main], others


def _file(obj: Mapping[str, Any], object_type: str) -> Description:
    links = tuple(_embedded(obj, "file"))
    attributes = _own_attributes(obj, "file")
    picked = _hash_entities(obj.get("hashes"))
    if picked is not None:
        main, value, others = picked
        entity = EntitySpec(_typed(obj, main), value, {**others, **attributes})
        return Description((entity,), links)
    name = _text(obj.get("name"))
    if name is not None and object_type == "file":
        attributes.pop("filename", None)
        return Description((EntitySpec(_typed(obj, "filename"), name, attributes),), links)
    return Description(
        links=links,
        problem=(
            "invalid_entity",
            f"the {object_type} object has no hash" + (" or name" if object_type == "file" else ""),
        ),
    )


def _domain_object(obj: Mapping[str, Any], object_type: str) -> Description:
    type_name = SDO_TYPES[object_type]
    name = _text(obj.get("name"))
    if object_type == "malware" and obj.get("is_family") is True:
        type_name = MALWARE_FAMILY_TYPE
    if object_type == "vulnerability":
        for reference in _listed(obj.get("external_references")):
            if isinstance(reference, dict) and reference.get("source_name") == "cve":
                name = _text(reference.get("external_id")) or name
                break
    if name is None:
        return _no_value(object_type, "name")
    attributes: dict[str, Any] = {}
    original = obj.get("name")
    type_name = _typed(obj, type_name)
    if isinstance(original, str) and original != _normalised_or_none(type_name, name):
        attributes["name"] = original
    aliases = obj.get("aliases")
    if isinstance(aliases, list) and aliases:
        attributes["aliases"] = [str(alias) for alias in aliases]
    attributes.update(exported_attributes(obj))
    return Description((EntitySpec(type_name, name, attributes),))


def _normalised_or_none(type_name: str, value: str) -> str | None:
    try:
        return normalise(type_name, value)
    except NormalisationError:
        return None


def _network_traffic(obj: Mapping[str, Any], object_type: str) -> Description:
    value: Any = obj
    for step in USER_AGENT_PATH:
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    agent = _text(value)
    entities = (EntitySpec("user-agent", agent),) if agent is not None else ()
    links: list[RefLink] = []
    source, destination = obj.get("src_ref"), obj.get("dst_ref")
    if isinstance(source, str):
        if isinstance(destination, str):
            links.append(RefLink(source, destination, "connected-to"))
        if entities:
            links.append(RefLink(source, entities[0], "uses"))
    if not entities and not links:
        return Description(
            problem=("no_entity", "the network-traffic object names no source with a destination")
        )
    return Description(entities, tuple(links))


def _email_message(obj: Mapping[str, Any], object_type: str) -> Description:
    for prop, type_name in (("message_id", "email"), ("subject", "email-subject")):
        value = _text(obj.get(prop))
        if value is not None:
            entity = EntitySpec(
                _typed(obj, type_name), value, _own_attributes(obj, "email-message")
            )
            return Description((entity,), tuple(_embedded(obj, "email-message")))
    return Description(
        problem=("no_entity", "the email-message object has neither a message_id nor a subject")
    )


def _generic(obj: Mapping[str, Any], object_type: str) -> Description:
    type_name, value = obj.get(ENTITY_TYPE_PROPERTY), _text(obj.get("value"))
    if not isinstance(type_name, str) or type_name not in CATALOGUE or value is None:
        return Description(
            problem=("invalid_entity", f"the {object_type} object names no known entity type")
        )
    return Description((EntitySpec(type_name, value, _own_attributes(obj, object_type)),))


def _misp_object(obj: Mapping[str, Any], object_type: str) -> Description:
    """A MISP object exported as ``x-misp-object``: its attributes of known types."""
    entities: list[EntitySpec] = []
    hashes: dict[str, str] = {}
    for attribute in _listed(obj.get("x_misp_attributes")):
        if not isinstance(attribute, dict):
            continue
        value = _text(attribute.get("value"))
        misp_type = attribute.get("type")
        type_name = MISP_ATTRIBUTE_TYPES.get(misp_type) if isinstance(misp_type, str) else None
        if obj.get("x_misp_name") == "av-signature" and attribute.get("object_relation") == (
            "signature"
        ):
            type_name = MISP_SIGNATURE_TYPE
        if value is None or type_name is None:
            continue
        if type_name in _HASH_ORDER:
            hashes.setdefault(type_name, value)
        else:
            entities.append(EntitySpec(type_name, value))
    if hashes:
        main = min(hashes, key=_HASH_ORDER.__getitem__)
        others = {name: value for name, value in hashes.items() if name != main}
        entities.insert(0, EntitySpec(main, hashes[main], others))
    if not entities:
        name = obj.get("x_misp_name")
        return Description(
            problem=("unsupported_type", f"a MISP {str(name)[:64]!r} object has no entity type")
        )
    links = tuple(
        RefLink(None, target, "resolves-to")
        for target in entities[1:]
        if obj.get("x_misp_name") == "domain-ip" and entities[0].type in ("domain", "hostname")
    )
    return Description(tuple(entities), links)


_DESCRIBERS = {
    "file": _file,
    "artifact": _file,
    "network-traffic": _network_traffic,
    "email-message": _email_message,
    "x-misp-object": _misp_object,
    GENERIC_OBJECT_TYPE: _generic,
}


# ---- references ------------------------------------------------------------------------------


def _embedded(obj: Mapping[str, Any], object_type: str) -> Iterator[RefLink]:
    for prop, name in EMBEDDED_REFS.get(object_type, ()):
        yield from _refs(obj.get(prop), name)
    if object_type == "file":
        extensions = obj.get("extensions")
        archive = extensions.get("archive-ext") if isinstance(extensions, dict) else None
        if isinstance(archive, dict):
            yield from _refs(archive.get("contains_refs"), "contains")


def _refs(value: Any, name: str) -> Iterator[RefLink]:
    for ref in value if isinstance(value, list) else (value,):
        if isinstance(ref, str) and ref:
            yield RefLink(None, ref, name)


def embedded_ref_ids(obj: Mapping[str, Any]) -> Iterator[str]:
    """Every object ID the object refers to by a property ending in ``_ref``/``_refs``
    (``created_by_ref`` and ``object_marking_refs`` aside), for dangling-reference checks."""
    for key, value in obj.items():
        if key in ("created_by_ref", "object_marking_refs") or not key.endswith(("_ref", "_refs")):
            continue
        for ref in value if isinstance(value, list) else (value,):
            if isinstance(ref, str):
                yield ref


# ---- objects an indicator pattern describes ---------------------------------------------------

REF_TYPES = {
    "belongs_to_refs": "autonomous-system",
    "contains_refs": "file",
    "parent_directory_ref": "directory",
    "image_ref": "file",
}
"""The type of the object a pattern's reference path points at, where the property says it;
otherwise it is read from the value (an address, an email address or a domain name)."""


_SIMPLE_PATHS: dict[tuple[str, tuple[PathStep, ...]], str] = {
    (object_type, (prop,)): type_name
    for object_type, (prop, type_name) in SIMPLE_OBSERVABLES.items()
    if object_type not in ("ipv4-addr", "ipv6-addr")
}


def simple_entity(conjunction: Conjunction) -> EntitySpec | None:
    """The entity of a conjunction that is one comparison on a main value (the common case:
    ``[mutex:name = '...']``), without building objects; None for any other conjunction."""
    if len(conjunction) != 1:
        return None
    comparison = conjunction[0]
    object_type, path, value = comparison.object_type, comparison.path, comparison.value
    if object_type in ("ipv4-addr", "ipv6-addr") and path == ("value",):
        return EntitySpec("cidr" if "/" in value else "ip", value)
    if object_type == "file" and len(path) == 2 and path[0] == "hashes":
        type_name = HASH_NAMES.get(str(path[1]).upper().replace("-", "").replace("_", ""))
        return EntitySpec(type_name, value) if type_name is not None else None
    type_name = _SIMPLE_PATHS.get((object_type, path))
    return EntitySpec(type_name, value) if type_name is not None else None


_RESOLVES = ("resolves_to_refs", "*", "value")


def domain_resolutions(conjunction: Conjunction) -> tuple[EntitySpec, list[EntitySpec]] | None:
    """A domain and the addresses it resolves to, for a conjunction of only
    ``domain-name:value`` (once) and ``domain-name:resolves_to_refs[*].value`` comparisons
    (how publishers write a domain with its A records), without building objects; None for
    any other conjunction. Gives what ``objects_of_conjunction`` and ``describe`` would."""
    domain: EntitySpec | None = None
    targets: list[EntitySpec] = []
    for comparison in conjunction:
        if comparison.object_type != "domain-name":
            return None
        if comparison.path == ("value",) and domain is None:
            domain = EntitySpec("domain", comparison.value)
        elif comparison.path == _RESOLVES:
            object_type = _type_of_value(comparison.value)
            if object_type == "email-addr":
                return None
            type_name = SIMPLE_OBSERVABLES[object_type][1]
            if object_type != "domain-name" and "/" in comparison.value:
                type_name = "cidr"
            targets.append(EntitySpec(type_name, comparison.value))
        else:
            return None
    return None if domain is None else (domain, targets)


_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?")


def _type_of_value(value: str) -> str:
    if _IPV4.fullmatch(value):
        return "ipv4-addr"
    if ":" not in value:
        return "email-addr" if "@" in value else "domain-name"
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "email-addr" if "@" in value else "domain-name"
    return "ipv4-addr" if network.version == 4 else "ipv6-addr"


def objects_of_conjunction(conjunction: Conjunction) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects one conjunction of a pattern describes, as STIX-like dicts whose references
    point at the other dicts' ``id`` (``pattern--<n>``), and the ``type:path`` of every
    comparison on a property ``describe`` does not read (kept out of the dicts)."""
    objects: list[dict[str, Any]] = []
    by_type: dict[str, dict[str, Any]] = {}
    indexed: dict[tuple[int, str, int], dict[str, Any]] = {}
    ignored: list[str] = []

    def new(object_type: str) -> dict[str, Any]:
        made: dict[str, Any] = {"type": object_type, "id": f"{object_type}--pattern-{len(objects)}"}
        objects.append(made)
        return made

    for comparison in conjunction:
        path, value = comparison.path, comparison.value
        owner = by_type.get(comparison.object_type)
        if owner is None or _has_other(owner, path, value):
            owner = by_type[comparison.object_type] = new(comparison.object_type)
        head = path[0]
        if isinstance(head, str) and head.endswith(("_ref", "_refs")):
            rest = path[1:]
            index: int | None = None
            if rest and (rest[0] == "*" or isinstance(rest[0], int)):
                index = rest[0] if isinstance(rest[0], int) else None
                rest = rest[1:]
            if not rest or not all(isinstance(step, str) for step in rest):
                ignored.append(f"{comparison.object_type}:{'.'.join(map(str, path))}")
                continue
            target_type = REF_TYPES.get(head) or _type_of_value(value)
            key = (id(owner), head, index) if index is not None else None
            target = indexed.get(key) if key is not None else None
            if target is None:
                target = new(target_type)
                if key is not None:
                    indexed[key] = target
                if head.endswith("_refs"):
                    owner.setdefault(head, []).append(target["id"])
                else:
                    owner[head] = target["id"]
            _set(target, tuple(str(step) for step in rest), value)
        else:
            _set(owner, path, value)
    for made in objects:
        _drop_unread(made, ignored)
    return objects, ignored


def _has_other(owner: Mapping[str, Any], path: tuple[Any, ...], value: str) -> bool:
    """Whether ``owner`` already holds another value at the plain property ``path``."""
    node: Any = owner
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return False
        node = node[step]
    return isinstance(node, str) and node != value


def _set(obj: dict[str, Any], path: tuple[Any, ...], value: str) -> None:
    node = obj
    for step in path[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[path[-1]] = value


_READ_PROPERTIES: dict[str, frozenset[str]] = {
    object_type: frozenset(
        {prop}
        | set(OBSERVABLE_ATTRIBUTES.get(object_type, {}))
        | {ref for ref, _ in EMBEDDED_REFS.get(object_type, ())}
    )
    for object_type, (prop, _) in SIMPLE_OBSERVABLES.items()
}
_READ_PROPERTIES["file"] = frozenset(
    {"hashes", *OBSERVABLE_ATTRIBUTES["file"], *(ref for ref, _ in EMBEDDED_REFS["file"])}
)
_READ_PROPERTIES["artifact"] = frozenset({"hashes"})
_READ_PROPERTIES["network-traffic"] = frozenset({"src_ref", "dst_ref", "extensions"})
_READ_PROPERTIES["email-message"] = frozenset(
    {"message_id", "subject", *(ref for ref, _ in EMBEDDED_REFS["email-message"])}
)


def _drop_unread(obj: dict[str, Any], ignored: list[str]) -> None:
    read = _READ_PROPERTIES.get(obj["type"], frozenset())
    for key in [key for key in obj if key not in ("type", "id") and key not in read]:
        del obj[key]
        ignored.append(f"{obj['type']}:{key}")
    hashes = obj.get("hashes")
    if isinstance(hashes, dict):
        for name in [n for n in hashes if str(n).upper().replace("-", "") not in HASH_NAMES]:
            del hashes[name]
            ignored.append(f"{obj['type']}:hashes.{name}")
    extensions = obj.get("extensions")
    if isinstance(extensions, dict):
        agent: Any = extensions
        for step in USER_AGENT_PATH[1:]:
            agent = agent.get(step) if isinstance(agent, dict) else None
        if agent is None:
            del obj["extensions"]
            ignored.append(f"{obj['type']}:extensions")
