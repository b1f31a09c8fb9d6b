"""The OpenAPI 3.1 description of the front (``GET /openapi.json``), rendered from the route
table (``ingest_api.routes``) and the pydantic models of the bodies, so that the document,
the routes served and the validation never drift apart."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ingest_api.bodies import JSON_TYPE
from ingest_api.routes import ROUTES, Failure, Parameter, RequestBody, Route, Success
from schemas.examples import BY_MODEL

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_AUTH: list[dict[str, list[str]]] = [{"apiKey": [], "apiSecret": []}, {"bearerAuth": []}]
_NDJSON = "application/x-ndjson"
_ERROR_HEADERS = {
    "x-error": {"description": "the error message", "schema": {"type": "string"}},
    "x-error-id": {"description": "the errorID", "schema": {"type": "string"}},
}
_RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer"}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON_TYPE: {"schema": schema}}


def _examples(model: type[BaseModel]) -> dict[str, Any]:
    """The named examples of ``model`` (``schemas.examples``) as a media type lists them."""
    named = BY_MODEL.get(model.__name__, {})
    return {
        f"example{number}": {"summary": title, "value": value}
        for number, (title, value) in enumerate(named.items(), 1)
    }


def _request_body(body: RequestBody) -> dict[str, Any]:
    if not body.bulk:
        content = _json(_ref(body.model))
        if examples := _examples(body.model):
            content[JSON_TYPE]["examples"] = examples
        return {"required": True, "content": content}
    lines = {"type": "string", "description": f"one {body.model.__name__} JSON per line"}
    content = {
        JSON_TYPE: {"schema": {"type": "array", "items": _ref(body.model)}},
        _NDJSON: {"schema": lines},
    }
    return {"required": True, "content": content}


def _success(success: Success) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": success.description}
    if success.location is not None:
        answer["headers"] = {
            "Location": {"description": success.location, "schema": {"type": "string"}}
        }
    if success.model is not None:
        schema: dict[str, Any] = _ref(success.model)
        if success.alternatives:
            schema = {"anyOf": [schema, *(_ref(model) for model in success.alternatives)]}
        if success.many:
            schema = {"type": "array", "items": schema}
        answer["content"] = {success.media_type: {"schema": schema}}
        if not success.many and (examples := _examples(success.model)):
            answer["content"][success.media_type]["examples"] = examples
    elif success.schema is not None:
        answer["content"] = {success.media_type: {"schema": dict(success.schema)}}
    return answer


def _failure(failure: Failure) -> dict[str, Any]:
    headers: dict[str, Any] = dict(_ERROR_HEADERS)
    if failure.retry_after:
        headers = {"Retry-After": _RETRY_AFTER, **headers}
    return {
        "description": failure.description,
        "headers": headers,
        "content": _json(_ref(failure.model)),
    }


def _parameter(parameter: Parameter) -> dict[str, Any]:
    return {
        "name": parameter.name,
        "in": parameter.location,
        "required": parameter.location == "path",
        "description": parameter.description,
        "schema": dict(parameter.schema),
    }


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary}
    if route.description is not None:
        operation["description"] = route.description
    if route.authenticated:
        operation["security"] = _AUTH
    if route.parameters:
        operation["parameters"] = [_parameter(p) for p in route.parameters]
    if route.body is not None:
        operation["requestBody"] = _request_body(route.body)
    operation["responses"] = {
        str(route.success.status): _success(route.success),
        **{str(failure.status): _failure(failure) for failure in route.failures},
    }
    return operation


def _paths() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return paths


def _models() -> list[type[BaseModel]]:
    """Every model a route names, each once, in the order of the table."""
    models: dict[type[BaseModel], None] = {}
    for route in ROUTES:
        if route.body is not None:
            models[route.body.model] = None
        if route.success.model is not None:
            models[route.success.model] = None
        for alternative in route.success.alternatives:
            models[alternative] = None
        for failure in route.failures:
            models[failure.model] = None
    return list(models)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process; treat it as read-only)."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in _models()], ref_template=_REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "assoc-ingest",
            "version": "1.0.0",
            "description": "Asynchronous ingest of threat-intelligence associations. Writes "
            "answer 202 once the job is durably queued; poll GET /api/ingest/v1/jobs/{jobID}.",
        },
        "paths": _paths(),
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
                "apiSecret": {"type": "apiKey", "in": "header", "name": "api-secret"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }
