"""Schemathesis against the served OpenAPI document, with an admin API key and every check
schemathesis has (status codes, content types, headers and bodies conforming to the document,
negative data rejected, ...): no input produces a 5xx or an undocumented answer, and every
error answer is well formed. Bounded: a dozen or so examples per operation.

Two settings depart from schemathesis' defaults: a 400 is an acceptable answer to data the
schema allows. The document cannot state the association matrix, normalisation (a private
address is a string too) or which values are defanged; those are 400s by SPEC §3. And a 422
``idempotency_key_reused`` is too: schemathesis sends the documented example bodies with the
same generated Idempotency-Key, and one key on two bodies is refused by SPEC §3 (the test
checks that a 422 is that and nothing else)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ingest_api.openapi import openapi_document
from tests.ingest_api.served import ServedApp

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi_document()))
# Credentials are ours (an admin API key), not generated: the fuzzing is of bodies and paths.
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=25,
    with_security_parameters=False,
)
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses,
    "400",
    "422",
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(context: Any, value: Any) -> bytes:
    """Generated NDJSON bodies: a string as its UTF-8 bytes, anything else as one JSON line."""
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace")
    return json.dumps(value).encode() + b"\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with ServedApp(tmp_path_factory.mktemp("fuzz")) as app:
        yield app


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_no_input_produces_a_server_error(
    case: Any, served: ServedApp
) -> None:
    response = case.call_and_validate(base_url=served.base_url, headers=served.credentials)
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = orjson.loads(response.content)
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert response.headers["x-error-id"] == [error["errorID"]]
        assert response.headers["x-error"]
        if response.status_code == 422:
            assert error["code"] == "idempotency_key_reused", error
