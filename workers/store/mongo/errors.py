"""Which MongoDB server errors are transient: a failover, a shutdown, a timeout.

The driver raises ``ConnectionFailure`` for lost connections, but a primary that steps down, a
node shutting down or a write interrupted by a replica-set change come back as
``OperationFailure`` (or a ``BulkWriteError`` carrying them per write). Those must be retried
like an unreachable server (``StoreUnavailable``): raised as they are, the worker would take
them for a failing item and dead-letter it.
"""

from __future__ import annotations

from pymongo.errors import BulkWriteError, OperationFailure

__all__ = ["TRANSIENT_CODES", "is_transient"]

TRANSIENT_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        112,  # WriteConflict
        134,  # ReadConcernMajorityNotAvailableYet
        189,  # PrimarySteppedDown
        262,  # ExceededTimeLimit
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)
"""Server error codes that the retryable-writes specification retries, and write conflicts."""

_TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")


def is_transient(exc: OperationFailure) -> bool:
    """Whether ``exc`` says the server cannot take the operation now (not that it is wrong).
    A bulk write error is transient when any of its write errors is."""
    if any(exc.has_error_label(label) for label in _TRANSIENT_LABELS):
        return True
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        if details.get("writeConcernErrors"):
            return True
        return any(error.get("code") in TRANSIENT_CODES for error in details.get("writeErrors", []))
    return exc.code in TRANSIENT_CODES
