"""What the MongoDB store needs to know of its server: its topology, and what its errors mean.

- ``supports_transactions``: multi-document transactions need a replica set (one member is
  enough) or a sharded cluster; a standalone ``mongod`` has none. Told from ``hello``.
- ``translated``: every driver error becomes one of the pipeline's own (``workers.ground.errors``):
  a document too large to store is a ``PermanentError`` (it would fail on every retry); every
  other failure is ``StoreUnavailable``, retried with backoff and never turned into a rejection
  (lost connections, elections, write conflicts, timeouts, and refusals an operator can fix
  such as a missing privilege). Duplicate keys never get this far: the callers that expect
  them handle them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from pymongo.errors import BulkWriteError, DocumentTooLarge, OperationFailure, PyMongoError

from workers.ground.errors import PermanentError, StoreUnavailable

__all__ = ["DUPLICATE_KEY", "is_duplicate_key", "supports_transactions", "translated"]

DUPLICATE_KEY = 11000
_TOO_LARGE = frozenset({10334, 17419, 17420})  # BSONObjectTooLarge and its update variants
_AUTHENTICATION_FAILED = 18


def supports_transactions(hello: Mapping[str, Any]) -> bool:
    """True when the server that answered ``hello`` runs multi-document transactions: a member
    of a replica set (``setName``) or a ``mongos`` of a sharded cluster (``isdbgrid``)."""
    return "setName" in hello or hello.get("msg") == "isdbgrid"


def is_duplicate_key(exc: BaseException) -> bool:
    """True when ``exc`` is (or, for a bulk write, holds) a duplicate-key error."""
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return any(error.get("code") == DUPLICATE_KEY for error in errors)
    return isinstance(exc, OperationFailure) and exc.code == DUPLICATE_KEY


def is_authentication_failure(exc: BaseException) -> bool:
    return isinstance(exc, OperationFailure) and exc.code == _AUTHENTICATION_FAILED


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Raise the pipeline's own error for any driver error inside (see the module docstring)."""
    try:
        yield
    except DocumentTooLarge as exc:
        raise PermanentError("document_too_large", f"MongoDB refused the document: {exc}") from exc
    except OperationFailure as exc:
        if exc.code in _TOO_LARGE:
            raise PermanentError("document_too_large", f"MongoDB: {exc}") from exc
        raise StoreUnavailable(f"MongoDB refused the operation: {exc}") from exc
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB unavailable: {exc}") from exc
