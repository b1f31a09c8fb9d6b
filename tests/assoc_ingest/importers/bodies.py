"""Checks every importer's output must pass: bodies the ingest API accepts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from assoc_ingest.importers import ImportResult
from schemas import AssociationRules, Rejection, entity_id, normalise
from schemas.http import AssociationBody, EntityBody, entity_main_value


def ids_of(result: ImportResult) -> set[str]:
    """The entity IDs of ``result``'s entity bodies, computed as the front computes them."""
    return {entity_id(body["type"], body["attributes"][body["type"]]) for body in result.entities}


def assert_bodies_are_valid(result: ImportResult) -> None:
    """Entity and association bodies are valid API bodies (provenance included), unique, and
    allowed by the matrix (or context associations under their relationship name).

    Every association joins two entities of the same result, so a feed can be submitted alone.
    """
    ids = ids_of(result)
    assert len(ids) == len(result.entities), "entities are unique by ID"
    for body in result.entities:
        parsed = EntityBody.model_validate(body)
        value = entity_main_value(parsed)
        assert normalise(parsed.type, value) == value, "the main attribute is already normalised"
    rules = AssociationRules()
    keys = Counter(
        (a["entityID"], a["relatedEntityID"], a["associationType"]) for a in result.associations
    )
    assert not [key for key, count in keys.items() if count > 1], "associations are unique"
    for association in result.associations:
        parsed_association = AssociationBody.model_validate(association)
        matched = rules.match(
            parsed_association.entityID,
            parsed_association.relatedEntityID,
            parsed_association.associationType,
        )
        assert not isinstance(matched, Rejection), (association, matched)
        assert matched.name == association["associationType"]
        assert association["entityID"] in ids and association["relatedEntityID"] in ids


def links(result: ImportResult, type_name: str) -> set[tuple[str, str]]:
    """``(entityID, relatedEntityID)`` of every association of ``type_name``."""
    return {
        (a["entityID"], a["relatedEntityID"])
        for a in result.associations
        if a["associationType"] == type_name
    }


def count_by_type(result: ImportResult) -> Counter[str]:
    """Entities by type."""
    return Counter(body["type"] for body in result.entities)


def count_by_association_type(result: ImportResult) -> Counter[str]:
    """Associations by type name."""
    return Counter(a["associationType"] for a in result.associations)


def context_links(result: ImportResult) -> list[dict[str, Any]]:
    """The association bodies with a context entity (a type with no kind) at either end."""
    return [
        a
        for a in result.associations
        if AssociationRules.is_context_pair(a["entityID"], a["relatedEntityID"])
    ]
