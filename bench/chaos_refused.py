"""What became of the requests the client was told were refused (``bench.chaos``).

A 503 or a lost connection means "not acknowledged", not "not enqueued": when the front's
publish failed by timeout or lost connection during a broker restart, the broker may have
enqueued the message and only the confirm was lost. Such a request is then processed like any
other: a job the client never learned of appears in the store, with an outcome for each of its
items, and its records are written. The front sends a request in one message, so it is written
all or nothing: a refused request is either wholly absent from the store or wholly processed
(its job, every outcome, every record). Anything in between is *half-written*: a bug.

Each refused request is matched to at most one store job that no 202 acknowledged, of the same
kind and size, whose outcomes are exactly what processing that request against the store's
content gives: ``stored`` for every item that would be written (every entity; every pair whose
two entities are in the store, acknowledged or refused-but-processed), ``rejected`` /
``entity_not_found`` for the others. The matching is a maximum bipartite matching, so that
requests of the same size never take each other's job.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from bench.chaos_store import StoreContent
from bench.chaos_submit import REFUSED, Answer

__all__ = ["JOB_KIND", "Refusals", "RefusedRequest", "sort_refusals"]

Outcome = tuple[str, str | None]
"""An item's (outcome, rejection code) in the store."""

STORED = "stored"
NOT_FOUND: Outcome = ("rejected", "entity_not_found")
JOB_KIND = {"entities": "entity", "associations": "association"}
"""The store's job kind of each kind of request."""


@dataclass(frozen=True, slots=True)
class RefusedRequest:
    """One refused request and what the store holds of it."""

    answer: Answer
    expected: frozenset[str]
    """The keys that processing the request writes (the others are rejected)."""
    present: frozenset[str]
    """The keys found in the store."""
    job: str | None
    """The unacknowledged store job that is this request's, if it was wholly processed."""

    @property
    def processed(self) -> bool:
        """Wholly processed: its job, every outcome and every record are in the store."""
        return self.job is not None

    @property
    def half_written(self) -> bool:
        """Some of its records are in the store, but not all of them or not their job."""
        return bool(self.present) and self.job is None

    def describe(self) -> str:
        a = self.answer
        return (
            f"step {a.step} ({len(a.keys)} {a.kind}, refused at {a.answered:.1f} s): "
            f"{len(self.present & self.expected)} of {len(self.expected)} records written, "
            f"{len(self.present - self.expected)} unexpected, job {self.job or 'not found'}"
        )


@dataclass(frozen=True, slots=True)
class Refusals:
    requests: tuple[RefusedRequest, ...]

    @property
    def processed(self) -> tuple[RefusedRequest, ...]:
        return tuple(r for r in self.requests if r.processed)

    @property
    def half_written(self) -> tuple[RefusedRequest, ...]:
        return tuple(r for r in self.requests if r.half_written)

    @property
    def jobs(self) -> frozenset[str]:
        """The store jobs of the wholly processed refused requests."""
        return frozenset(r.job for r in self.requests if r.job is not None)

    @property
    def outcome_rows(self) -> int:
        """The outcomes those jobs hold: one per item."""
        return sum(len(r.answer.keys) for r in self.processed)

    def written(self, kind: str) -> frozenset[str]:
        """The records (entity IDs or pair IDs) the processed requests of ``kind`` wrote."""
        return frozenset(k for r in self.processed if r.answer.kind == kind for k in r.expected)


def sort_refusals(
    answers: Iterable[Answer],
    store: StoreContent,
    ends: Callable[[str], tuple[str, str]],
    acked_entities: Collection[str],
    acked_jobs: Collection[str],
) -> Refusals:
    """Every refused request of ``answers`` with what the store holds of it and its job, if
    it was wholly processed. ``ends`` gives a pair's two entity IDs; ``acked_entities`` and
    ``acked_jobs`` are what 202s acknowledged (a refused pair is expected to be written when
    both its entities are acknowledged or written by a processed refused request)."""
    refused = [a for a in answers if a.verdict == REFUSED]
    foreign = {job: _items(store, job) for job in store.jobs if job not in acked_jobs}
    entities = _sort(
        [a for a in refused if a.kind == "entities"],
        store.entities,
        lambda key: True,
        store,
        foreign,
    )
    available = set(acked_entities) | Refusals(entities).written("entities")
    pairs = _sort(
        [a for a in refused if a.kind != "entities"],
        set(store.associations),
        lambda key: set(ends(key)) <= available,
        store,
        foreign,
    )
    return Refusals(entities + pairs)


def _items(store: StoreContent, job: str) -> list[Outcome | None]:
    """The outcome of each item of ``job``, None where it has none."""
    return [store.outcomes.get((job, index)) for index in range(store.jobs[job])]


def _sort(
    answers: list[Answer],
    in_store: Collection[str],
    writable: Callable[[str], bool],
    store: StoreContent,
    foreign: dict[str, list[Outcome | None]],
) -> tuple[RefusedRequest, ...]:
    expected = [frozenset(k for k in a.keys if writable(k)) for a in answers]
    present = [frozenset(k for k in a.keys if k in in_store) for a in answers]
    candidates: dict[int, list[str]] = {}
    for i, answer in enumerate(answers):
        if present[i] != expected[i]:
            continue
        wanted: list[Outcome] = [
            (STORED, None) if k in expected[i] else NOT_FOUND for k in answer.keys
        ]
        kind = JOB_KIND.get(answer.kind)
        candidates[i] = [
            job
            for job, outcomes in foreign.items()
            if store.job_kinds.get(job) == kind and _same(outcomes, wanted)
        ]
    jobs = _match(candidates)
    return tuple(
        RefusedRequest(a, expected[i], present[i], jobs.get(i)) for i, a in enumerate(answers)
    )


def _same(outcomes: list[Outcome | None], wanted: list[Outcome]) -> bool:
    """Whether a job's outcomes are ``wanted`` (a stored item's code is not compared)."""
    if len(outcomes) != len(wanted):
        return False
    for got, want in zip(outcomes, wanted, strict=True):
        if got is None or got[0] != want[0] or (want[0] != STORED and got != want):
            return False
    return True


def _match(candidates: dict[int, list[str]]) -> dict[int, str]:
    """A maximum matching of requests to jobs (augmenting paths; both sides are small)."""
    owner: dict[str, int] = {}

    def augment(request: int, seen: set[str]) -> bool:
        for job in candidates[request]:
            if job in seen:
                continue
            seen.add(job)
            if job not in owner or augment(owner[job], seen):
                owner[job] = request
                return True
        return False

    for request in candidates:
        augment(request, set())
    return {request: job for job, request in owner.items()}
