"""Plain records that cross the ``Store`` interface (no driver types leak through it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from schemas.messages import EntityRecord

__all__ = [
    "AfterEffects",
    "ApiKeyRecord",
    "AssociationRecord",
    "BatchResult",
    "CustomTypeRecord",
    "Direction",
    "EdgeDelete",
    "EdgeWrite",
    "EntityRecord",
    "EntityWrite",
    "ItemError",
    "ItemKey",
    "JobHeader",
    "JobStatus",
    "KeyReservation",
    "Outcome",
    "PresetOutcome",
    "ReservedKey",
    "SourceEntry",
    "StoredEntity",
    "WaitingItem",
    "WriteBatch",
    "api_key_status",
]


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    FAILED = "failed"
    """The item made its handler fail (a bug, not a true rejection): it went to the dead-letter
    queue with the reason. Not final: the item is applied again when it is replayed, and its
    real outcome replaces this one."""


class Direction(StrEnum):
    OUT = "out"
    IN = "in"
    BOTH = "both"


ItemKey = tuple[str, int]
"""(job ID, index of the item in its job): the identity of one submitted item."""


class SourceEntry(NamedTuple):
    """What one source said of an association or entity (SPEC §5).

    ``kind`` is ``source`` for a name the input gave (a feed, a STIX identity) and ``user``
    for the submitting user; (kind, name) identifies the entry. ``confidence`` is the highest
    given (0-100), ``tlp`` the latest given, ``first_seen``/``last_seen`` the widest times
    given (seconds since the epoch); None where the source never gave one. (A named tuple:
    the worker builds and merges one per item.)
    """

    name: str
    kind: str
    confidence: int | None = None
    tlp: str | None = None
    first_seen: float | None = None
    last_seen: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True, slots=True)
class JobHeader:
    """What is known of a job when its first item is written (inserted once, never changed)."""

    job_id: str
    kind: str
    owner: str
    groups: tuple[str, ...]
    total: int
    created_at: float


@dataclass(slots=True)
class EdgeWrite:
    """Upsert one association; its outcome is ``stored`` when the record or the type name is
    new, ``duplicate`` otherwise (then ``lastSeen`` and ``submissions`` are refreshed).

    Treat it as immutable. It is not declared frozen because the worker builds one per
    association item, and a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, several times slower (bench/worker-cpu.md)."""

    key: ItemKey
    association_id: str
    entity_id: str
    related_id: str
    entity_type: str
    related_type: str
    association_type: str
    file_action: bool
    created_by: str
    sources: tuple[SourceEntry, ...] = ()
    """Merged into the record's sources (``sources.merge_sources``)."""


@dataclass(frozen=True, slots=True)
class EdgeDelete:
    """Remove one association type from a pair (all types when ``association_type`` is None);
    the record goes when no type is left. Outcome ``deleted`` or ``not_found``."""

    key: ItemKey
    association_id: str
    association_type: str | None


@dataclass(frozen=True, slots=True)
class EntityWrite:
    """Upsert an entity (and its nested children); outcome ``stored`` when the main entity is
    new, ``duplicate`` when it existed (attributes merged, tags unioned, ``lastSeen`` set).

    ``part_keys``, when given, are the item keys of ``entities[1:]`` then of ``edges``, in
    order: each child gets its own outcome (``stored`` when new, else ``duplicate``) and each
    link its edge's outcome, so that a job counts every entity and link it carries. Without
    them only the main entity has an outcome."""

    key: ItemKey
    entities: tuple[EntityRecord, ...]
    edges: tuple[EdgeWrite, ...] = ()
    part_keys: tuple[ItemKey, ...] = ()
    sources: tuple[tuple[SourceEntry, ...], ...] = ()
    """The sources of each of ``entities`` (same order; missing ones have none)."""

    def __post_init__(self) -> None:
        expected = len(self.entities) - 1 + len(self.edges)
        if self.part_keys and len(self.part_keys) != expected:
            raise ValueError(f"{len(self.part_keys)} part keys for {expected} parts")


@dataclass(frozen=True, slots=True)
class WaitingItem:
    """An item waiting for entities that do not exist yet (``entity_ids``), first found
    missing at ``since``: ``get_job`` shows it as waiting until it has an outcome."""

    key: ItemKey
    entity_ids: tuple[str, ...]
    since: float


@dataclass(frozen=True, slots=True)
class PresetOutcome:
    """An outcome the worker decided without writing (a rejection)."""

    key: ItemKey
    outcome: Outcome
    code: str | None = None
    message: str | None = None


@dataclass(slots=True)
class WriteBatch:
    """Everything one message changes, written in one store round trip where the store can.

    Items whose key already has an outcome in the store (a redelivered message) are skipped
    and keep the outcome they had: writing a batch twice changes nothing the second time. The
    exception is ``failed``, which a later outcome of the same key replaces.

    ``waiting`` records items still waiting for an entity (the first ``since`` of a key is
    kept); ``clears_waiting`` says that items of this batch may have been waiting, so that
    their waiting records go once they have an outcome.
    """

    now: float
    jobs: list[JobHeader] = field(default_factory=list)
    edges: list[EdgeWrite] = field(default_factory=list)
    deletes: list[EdgeDelete] = field(default_factory=list)
    entities: list[EntityWrite] = field(default_factory=list)
    preset: list[PresetOutcome] = field(default_factory=list)
    waiting: list[WaitingItem] = field(default_factory=list)
    clears_waiting: bool = False


AfterEffects = Callable[[WriteBatch], None]
"""A test seam of the stores (``after_effects=`` of each adapter): called with a batch once its
effects are written and before its items' outcomes are, on every attempt to write it. What it
raises fails that write as a store failure there would, so a test can show that a batch is all
or nothing (the effects are rolled back with it) without a mock of any driver."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: dict[ItemKey, Outcome]
    skipped: frozenset[ItemKey] = frozenset()
    """Keys that already had an outcome before this batch (redelivered items)."""


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    kind: str
    owner: str
    groups: tuple[str, ...]
    total: int
    created_at: float
    counts: dict[str, int]
    errors: list[ItemError]
    updated_at: float | None
    waiting: int = 0
    """Items without an outcome that wait for an entity to exist."""
    waiting_for: tuple[str, ...] = ()
    """The entity IDs those items wait for (at most ``logic.MAX_WAITING_FOR``)."""

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    @property
    def status(self) -> str:
        """``queued`` before any outcome or wait, ``processing`` while some outcomes are
        missing, then ``failed`` when an item failed or every item was rejected, else
        ``done``."""
        done = self.processed
        if done == 0 and not self.waiting:
            return "queued"
        if done < self.total:
            return "processing"
        if self.counts.get(Outcome.FAILED, 0):
            return "failed"
        if self.counts.get(Outcome.REJECTED, 0) == self.total:
            return "failed"
        return "done"


@dataclass(frozen=True, slots=True)
class StoredEntity:
    id: str
    type: str
    attributes: dict[str, Any]
    reputation: int | None
    tags: tuple[str, ...]
    visible_by: tuple[str, ...]
    created_at: float
    last_seen: float
    sources: tuple[SourceEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class AssociationRecord:
    id: str
    entity_id: str
    related_id: str
    entity_type: str
    related_type: str
    association_types: tuple[str, ...]
    file_action: bool
    created_at: float
    last_seen: float
    submissions: int
    created_by: str
    sources: tuple[SourceEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    secret_digest: str
    user_id: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    created_at: float
    expires_at: float | None
    revoked: bool = False


def api_key_status(record: ApiKeyRecord, now: float) -> Literal["active", "expired", "revoked"]:
    """``revoked`` once revoked, else ``expired`` from ``expires_at`` on (seconds since the
    epoch, compared with ``now``), else ``active``: only an active key authenticates."""
    if record.revoked:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


@dataclass(frozen=True, slots=True)
class CustomTypeRecord:
    name: str
    primary: str
    non_primary: tuple[str, ...]
    file_action: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyReservation:
    """An ``Idempotency-Key`` of one user (SPEC §3): the job it stands for and the digest of the
    request that first used it."""

    user: str
    key: str
    digest: str
    job_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ReservedKey:
    """What ``Store.reserve_idempotency_key`` found: the reservation that holds for the key."""

    reservation: KeyReservation
    """The one given when it was stored, else the earlier one still within the window."""
    new: bool
    """The given reservation was stored: the first use of the key within the window."""
    job_known: bool
    """The job's header is in the store, so the broker took its message (the front registers a
    job only after the confirm, a worker only once it holds the message): it need not be sent
    again."""
