"""Pydantic models of the HTTP bodies only the front has: the API-key bodies of ``/keys`` and
the answer to a bulk with no valid item. The other bodies are in ``schemas.http``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ingest_api.keys import ROLES
from schemas.http import BulkItemError, ErrorDetail

__all__ = [
    "MAX_KEY_DAYS",
    "ApiKeyBody",
    "ApiKeyCreatedResponse",
    "ApiKeyResponse",
    "BulkErrorBody",
]

MAX_KEY_DAYS = 36_500
"""Longest validity of a key created over HTTP (100 years); omit ``days`` for no expiry."""


class ApiKeyBody(BaseModel):
    """A new API key (``POST /keys``)."""

    model_config = ConfigDict(extra="forbid")

    userID: str = Field(min_length=1, max_length=256, description="user the key acts as")
    roles: list[Literal["admin", "user", "reporter", "trusted"]] = Field(
        min_length=1, description=f"roles granted: {', '.join(ROLES)}"
    )
    groups: list[str] = Field(default_factory=list, description="groups of the user")
    days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_KEY_DAYS,
        description="days until the key expires; never when absent",
    )


class ApiKeyResponse(BaseModel):
    """A stored API key as listed: never its secret nor the secret's digest."""

    model_config = ConfigDict(extra="forbid")

    apiKey: str = Field(description="the key ID, sent as the api-key header")
    userID: str
    roles: list[str]
    groups: list[str]
    createdAt: datetime
    expiresAt: datetime | None = Field(description="null: never expires")
    status: Literal["active", "expired", "revoked"]


class ApiKeyCreatedResponse(ApiKeyResponse):
    """A key just created, with its secret: shown this once, stored only as a digest."""

    apiSecret: str = Field(description="send as the api-secret header; cannot be recovered")


class BulkErrorBody(BaseModel):
    """A refused bulk (400): the error, and when no item is valid (``no_valid_items``) every
    item's reason; a body or credentials refused as a whole carry the error alone."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail
    accepted: int = Field(default=0, description="always 0: nothing was queued")
    rejected: list[BulkItemError] = Field(
        default_factory=list, description="no_valid_items: every item, by index, with its error"
    )
