"""The one error tree of the pipeline.

Every adapter translates its driver's exceptions into one of these three, so that callers decide
what to do from the class alone:

- ``PermanentError``: the input can never succeed; reject it with a reason, never retry.
- ``TransientError``: the outside world (broker, store) is unavailable right now; retry with
  backoff, never turn it into a rejection.
- ``ConfigurationError``: the process is set up wrongly; raised at start-up only.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error the pipeline raises on purpose."""


class PermanentError(IngestError):
    """The input is wrong and will stay wrong: reject it with ``code`` and the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientError(IngestError):
    """A dependency is unavailable for now; the same call may succeed later."""


class BrokerUnavailable(TransientError):
    """The broker did not confirm a publish (nack, return, timeout, lost connection, full queue)."""


class QueueFull(BrokerUnavailable):
    """The work queue is at its maximum length and rejected the publish."""


class StoreUnavailable(TransientError):
    """The store could not be reached or did not answer in time."""


class ConfigurationError(IngestError):
    """The settings do not describe a working deployment."""
