"""What the fuzzer asserts of every answer (SPEC §3): no 5xx, the standard error body and
headers on every non-2xx, and every check schemathesis has (documented status, content type,
headers and body; negative data rejected; ...)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.core.failures import FailureGroup

from bench.fuzz_front import Front

__all__ = ["Tally", "error_body_problems", "response_problems"]


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    unsendable: Counter[str] = field(default_factory=Counter)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    failure_counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def fail(self, label: str, problem: str, detail: list[str]) -> None:
        key = (label, problem)
        self.failure_counts[key] += 1
        self.failures.setdefault(key, detail)


# ---- the checks ------------------------------------------------------------------------------


def _header(response: schemathesis.Response, name: str) -> str | None:
    for key, values in response.headers.items():
        if key.lower() == name and values:
            return str(values[0])
    return None


def _header_safe(text: str) -> bool:
    """Whether a message can travel unchanged in a header (else the front may clean it)."""
    return text.isascii() and text.isprintable() and len(text) <= 512


def error_body_problems(response: schemathesis.Response) -> list[str]:
    """Why a non-2xx answer is not the standard error (SPEC §3), if it is not."""
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        return ["the error body is not JSON"]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ["the body has no 'error' object"]
    problems = [
        f"error.{key} is not a non-empty string"
        for key in ("code", "message", "errorID")
        if not isinstance(error.get(key), str) or not error[key]
    ]
    if problems:
        return problems
    try:
        uuid.UUID(error["errorID"])
    except ValueError:
        problems.append("error.errorID is not a UUID")
    if _header(response, "x-error-id") != error["errorID"]:
        problems.append("x-error-id does not repeat error.errorID")
    x_error, message = _header(response, "x-error"), error["message"]
    if not x_error:
        problems.append("no x-error header")
    elif _header_safe(message) and x_error != message:
        problems.append("x-error is not the error message")
    return problems


def response_problems(case: Any, response: schemathesis.Response, front: Front) -> list[str]:
    status = response.status_code
    problems = [f"server error {status}"] if status >= 500 else []
    if status >= 400:
        problems += error_body_problems(response)
    try:
        case.validate_response(response, transport_kwargs={"base_url": front.base_url})
    except FailureGroup as group:
        problems += [f"{f.title} ({status})" for f in group.exceptions]
    return problems


# ---- running ---------------------------------------------------------------------------------
