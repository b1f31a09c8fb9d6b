"""The OpenAPI side of the fuzzer: loading operations, steering generation towards valid
IDs, and the valid requests of every write and read sent before the generated ones."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import requests
import schemathesis
from schemathesis.core.result import Ok

from bench.common import unique
from bench.fuzz_checks import Tally, response_problems
from bench.fuzz_front import Front
from schemas import DEFAULT_ASSOCIATION_TYPES, entity_id

__all__ = ["documented_operations", "load_operations", "send_valid_cases", "steered"]


KNOWN_IDS = [
    entity_id(type_name, value)
    for type_name, value in (
        ("asn", "15169"),
        ("ip", "8.8.8.8"),
        ("domain", "example.com"),
        ("url", "http://example.com/a"),
        ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("mutex", "Global\\fuzz"),
        ("email-address", "a@example.com"),
        ("user-agent", "fuzz/1.0"),
        ("cidr", "8.8.8.0/24"),
    )
]


def steered(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document whose entity IDs (bodies and paths) are drawn from
    ``KNOWN_IDS`` and association types from the defaults: random strings are never valid
    IDs, so without this no generated write would get past the ID check to the association
    matrix, the queue and a 202."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    body = copy["components"]["schemas"]["AssociationBody"]["properties"]
    for name in ("entityID", "relatedEntityID"):
        body[name] = {"enum": KNOWN_IDS}
    names = [association_type.name for association_type in DEFAULT_ASSOCIATION_TYPES]
    body["associationType"] = {"anyOf": [{"enum": names}, {"type": "null"}]}
    for item in copy["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "id":
                    parameter["schema"] = {"enum": KNOWN_IDS}
    return copy


def load_operations(document: dict[str, Any]) -> dict[str, Any]:
    """The schemathesis operations of ``document`` by label (credentials are not generated)."""
    schema = schemathesis.openapi.from_dict(document)
    schema.config.generation.update(with_security_parameters=False)
    # The document cannot state the association matrix nor normalisation: data it allows may
    # get a 400 (SPEC §3), as tests/ingest_api/test_fuzz.py explains.
    acceptance = schema.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*acceptance.expected_statuses, "400"]
    operations: dict[str, Any] = {}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"an operation cannot be fuzzed: {result.err()}")
        operations[result.ok().label] = result.ok()
    return operations


def documented_operations(document: dict[str, Any]) -> set[str]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    }


def send_valid_cases(
    operations: dict[str, Any], front: Front, session: requests.Session, tally: Tally
) -> int:
    """Valid requests of every write and read, so that 2xx answers are checked too (random
    cases rarely hold valid entity IDs). Returns how many were sent."""
    asn, ip = entity_id("asn", "15169"), entity_id("ip", "8.8.8.8")
    pair = {"entityID": asn, "relatedEntityID": ip}
    entity = {
        "type": "asn",
        "attributes": {"asn": "AS15169"},
        "associations": [{"type": "ip", "attributes": {"ip": "8.8.8.8"}}],
        "tags": ["fuzz"],
    }
    base = "/api/ingest/v1"
    bulk = [pair, {"entityID": ip, "relatedEntityID": asn}]
    name = unique("Fuzz Type")
    plan: list[tuple[str, dict[str, Any]]] = [
        (f"POST {base}/entity", {"body": entity}),
        (f"POST {base}/entities", {"body": [entity]}),
        (f"POST {base}/association", {"body": pair}),
        (f"POST {base}/associations", {"body": bulk}),
        (
            f"POST {base}/associations",
            {"body": "\n".join(json.dumps(b) for b in bulk), "media_type": "application/x-ndjson"},
        ),
        (f"DELETE {base}/association", {"body": {**pair, "associationType": "ASN to Address"}}),
        (f"PUT {base}/association-types/{{name}}", {
            "path_parameters": {"name": name},
            "body": {"primary": "File", "nonPrimary": ["Mutex", "Host"], "fileAction": True},
        }),
        (f"DELETE {base}/association-types/{{name}}", {"path_parameters": {"name": name}}),
        (f"POST {base}/keys", {"body": {"userID": "fuzz-temp", "roles": ["user"], "days": 1}}),
        (f"DELETE {base}/keys/{{keyID}}", {}),
        ("WAIT", {}),
        (f"GET {base}/entity/{{id}}", {"path_parameters": {"id": asn}}),
        (f"GET {base}/entity/{{id}}/associations", {"path_parameters": {"id": ip}}),
        (f"GET {base}/entity", {"query": {"type": "ip", "value": "8.8.8[.]8"}}),
        (f"GET {base}/jobs/{{jobID}}", {}),
        (f"GET {base}/jobs", {"query": {"limit": 5}}),
        ("GET /docs", {}),
        ("GET /docs/assets/{name}", {"path_parameters": {"name": "swagger-ui-bundle.js"}}),
    ]  # fmt: skip
    job_id = key_id = ""
    for label, values in plan:
        if label == "WAIT":
            time.sleep(2.0)  # the workers store the entities and the association
            continue
        if label.endswith("{jobID}"):
            values = {"path_parameters": {"jobID": job_id}}
        if label.endswith("{keyID}"):
            values = {"path_parameters": {"keyID": key_id}}
        if "body" in values:
            values.setdefault("media_type", "application/json")
        case = operations[label].Case(**values)
        response = case.call(base_url=front.base_url, session=session, headers=front.admin)
        tally.cases[label] += 1
        tally.statuses.setdefault(label, Counter())[f"{response.status_code // 100}xx"] += 1
        problems = response_problems(case, response, front)
        if response.status_code >= 300:
            problems.append(f"a valid request was refused with {response.status_code}")
        for problem in problems:
            curl = case.as_curl_command(headers=front.admin, base_url=front.base_url)
            tally.fail(label, f"{problem} (valid seed)", [response.text[:300], curl])
        if label.endswith("/entity") and response.status_code == 202:
            job_id = response.json()["jobID"]
        if label.endswith("/keys") and response.status_code == 201:
            key_id = response.json()["apiKey"]
    return len(plan) - 1
