"""What the fuzz tests share: how many examples to run, and the check of an error answer.

``FUZZ_PROFILE=deep`` (as ``make fuzz`` sets it) multiplies every example budget by 20; the
default keeps the whole directory well under a minute in CI.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
from hypothesis import HealthCheck, settings

_SCALE = {"ci": 1, "deep": 20}


def examples(count: int) -> int:
    """``count`` examples, scaled by the ``FUZZ_PROFILE`` environment variable."""
    return count * _SCALE[os.environ.get("FUZZ_PROFILE", "ci")]


def fuzz_settings(count: int) -> settings:
    """Settings of a fuzz test: ``examples(count)`` examples, no deadline, no database."""
    return settings(
        max_examples=examples(count),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def assert_standard_error(status: int, headers: Any, body: bytes) -> None:
    """A 4xx answer with the error body and headers of SPEC §3 (never a 5xx)."""
    assert 400 <= status < 500, (status, body[:500])
    error = orjson.loads(body)["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert headers["x-error-id"] == error["errorID"]
    uuid.UUID(error["errorID"])
    assert headers["x-error"]
