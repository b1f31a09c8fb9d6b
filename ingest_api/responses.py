"""What the views put in a JSON answer: response models as JSON data, stored times as
datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

__all__ = ["as_datetime", "dump"]

_LATEST = datetime.max.replace(tzinfo=UTC)


def dump(model: BaseModel) -> Any:
    """A response model as JSON-ready data (datetimes as ISO 8601 text, no ``None`` dropped)."""
    return model.model_dump(mode="json")


def as_datetime(seconds: float) -> datetime:
    """A stored time (seconds since the epoch) as an aware UTC datetime; a time beyond year
    9999 (e.g. a key created by the CLI to expire in a million days) shows as the latest one."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return _LATEST
