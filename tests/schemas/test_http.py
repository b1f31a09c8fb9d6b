"""HTTP bodies as clients send and receive them (camelCase on the wire)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import CATALOGUE, AssociationRules, NormalisationError, Rejection
from schemas.http import (
    AckResponse,
    AssociationBody,
    AssociationTypeBody,
    AssociationTypeResponse,
    BulkAckResponse,
    DefinitionResponse,
    EntityAckResponse,
    EntityBody,
    ErrorBody,
    ErrorDetail,
    JobStatusResponse,
    NestedEntity,
    entity_main_value,
)

ENTITY = "sha256-" + "a" * 64
RELATED = "domain-" + "b" * 64


def test_an_association_body_uses_the_threatwinds_names() -> None:
    body = AssociationBody.model_validate(
        {"entityID": ENTITY, "relatedEntityID": RELATED, "associationType": "File DNS Query"}
    )
    assert (body.entityID, body.relatedEntityID, body.associationType) == (
        ENTITY,
        RELATED,
        "File DNS Query",
    )
    assert AssociationBody.model_validate({"entityID": ENTITY, "relatedEntityID": RELATED})


@pytest.mark.parametrize(
    "payload",
    [
        {"entityID": ENTITY},
        {"entityID": ENTITY, "relatedEntityID": RELATED, "extra": 1},
        {"entityID": 5, "relatedEntityID": RELATED},
        {"entity_id": ENTITY, "related_id": RELATED},
    ],
)
def test_a_wrongly_shaped_association_body_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AssociationBody.model_validate(payload)


def test_an_entity_body_nests_children_to_any_depth() -> None:
    deep: dict[str, Any] = {"type": "ip", "attributes": {"ip": "8.8.8.8"}}
    for _ in range(5):
        deep = {"type": "domain", "attributes": {"domain": "x.example"}, "associations": [deep]}
    body = EntityBody.model_validate(
        {
            "type": "sha256",
            "attributes": {"sha256": "A" * 64, "size": 10},
            "associations": [deep],
            "reputation": -3,
            "tags": ["malware"],
            "visibleBy": ["public"],
        }
    )
    node: NestedEntity = body.associations[0]
    depth = 1
    while node.associations:
        node = node.associations[0]
        depth += 1
    assert depth == 6
    assert node.type == "ip"
    assert node.mode == "aggregation"


@pytest.mark.parametrize(
    "change",
    [{"reputation": 4}, {"tags": "one"}, {"unknown": True}, {"attributes": "x"}],
)
def test_a_wrongly_shaped_entity_body_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EntityBody.model_validate({"type": "ip", "attributes": {"ip": "8.8.8.8"}, **change})


@pytest.mark.parametrize(
    ("value", "expected"), [("8.8.8.8", "8.8.8.8"), (15169, "15169"), (15169.0, "15169")]
)
def test_the_main_value_is_the_attribute_named_like_the_type(value: object, expected: str) -> None:
    body = EntityBody.model_validate({"type": "asn", "attributes": {"asn": value}})
    assert entity_main_value(body) == expected


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({}, "must include the main attribute"),
        ({"ip": None}, "must include the main attribute"),
        ({"ip": True}, "string or a number"),
        ({"ip": ["8.8.8.8"]}, "string or a number"),
        ({"ip": float("nan")}, "string or a number"),
    ],
)
def test_a_missing_or_odd_main_value_is_an_invalid_entity(
    attributes: dict[str, Any], reason: str
) -> None:
    body = EntityBody.model_validate({"type": "ip", "attributes": attributes})
    with pytest.raises(NormalisationError, match=reason) as caught:
        entity_main_value(body)
    assert caught.value.code == "invalid_entity"


def test_acknowledgements_always_say_acknowledged() -> None:
    assert AckResponse(jobID="j").model_dump() == {"message": "acknowledged", "jobID": "j"}
    assert EntityAckResponse(jobID="j", entityID=ENTITY).model_dump()["entityID"] == ENTITY
    bulk = BulkAckResponse.model_validate(
        {
            "jobID": "j",
            "accepted": 1,
            "rejected": [{"index": 3, "error": {"code": "self_association", "message": "No."}}],
        }
    )
    assert bulk.model_dump()["rejected"][0]["error"]["code"] == "self_association"
    with pytest.raises(ValidationError):
        AckResponse.model_validate({"message": "ok", "jobID": "j"})


def test_a_not_allowed_rejection_becomes_the_threatconnect_error_body() -> None:
    rejection = AssociationRules().match("asn-" + "a" * 64, "cidr-" + "b" * 64, "URL Host")
    assert isinstance(rejection, Rejection)
    body = ErrorBody(error=ErrorDetail.from_rejection(rejection, "e-1"))
    assert body.model_dump(exclude_none=True) == {
        "error": {
            "code": "association_not_allowed",
            "message": "Association cannot be applied to the indicator types.",
            "errorID": "e-1",
            "errCode": "0x1001",
            "detail": "ASN -> CIDR: 'URL Host' is URL -> Address, Host; ASN -> CIDR is ASN to CIDR",
        }
    }


def test_an_ambiguous_rejection_lists_its_candidates() -> None:
    rejection = AssociationRules().match(ENTITY, RELATED)
    assert isinstance(rejection, Rejection)
    detail = ErrorDetail.from_rejection(rejection, "e-2")
    assert detail.candidates == ["File DNS Query", "File Traffic"]
    assert detail.errCode is None


def test_a_job_status_serialises_times_as_iso_8601() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = JobStatusResponse.model_validate(
        {
            "jobID": "j",
            "status": "done",
            "kind": "association",
            "total": 2,
            "counts": {"stored": 1, "rejected": 1},
            "errors": [{"index": 1, "code": "entity_not_found", "message": "missing"}],
            "createdAt": now,
            "updatedAt": now,
        }
    )
    dumped = status.model_dump(mode="json")
    assert dumped["createdAt"] == "2025-01-02T03:04:05Z"
    assert dumped["counts"] == {
        "stored": 1,
        "duplicate": 0,
        "deleted": 0,
        "not_found": 0,
        "rejected": 1,
        "failed": 0,
    }
    assert (dumped["waiting"], dumped["waitingFor"]) == (0, [])


def test_association_type_bodies_take_kind_names() -> None:
    body = AssociationTypeBody.model_validate({"primary": "File", "nonPrimary": ["Host"]})
    assert body.fileAction is False
    for bad in (
        {"primary": "Planet", "nonPrimary": ["Host"]},
        {"primary": "File", "nonPrimary": []},
    ):
        with pytest.raises(ValidationError):
            AssociationTypeBody.model_validate(bad)


def test_association_types_and_definitions_are_listed_in_wire_form() -> None:
    traffic = AssociationTypeResponse.from_type(AssociationRules().get("File Traffic"))  # type: ignore[arg-type]
    assert traffic.model_dump(mode="json") == {
        "name": "File Traffic",
        "primary": "File",
        "nonPrimary": ["Address", "Host", "URL"],
        "fileAction": True,
        "custom": False,
    }
    definition = DefinitionResponse.from_entity_type(CATALOGUE["sha256"])
    assert definition.model_dump(mode="json") == {
        "type": "sha256",
        "dataType": "hash",
        "kind": "File",
        "description": "A SHA-256 file digest",
    }


def test_every_body_has_described_fields_for_the_openapi_document() -> None:
    schema = EntityBody.model_json_schema()
    assert schema["properties"]["visibleBy"]["description"]
    assert "NestedEntity" in schema["$defs"]
