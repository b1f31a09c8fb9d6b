"""What the chaos scenario must find at the end, computed from what the client was told and
what the store file holds; every check is one line of the printed table.

Beyond "every item of every 202 has exactly one outcome, one record per pair, nothing left in
any queue", no logical request may count twice however often its client sent it: every 202 of
one request names the same job, no pair of the workload (each is in exactly one request) has a
submission count other than one, and the store holds no job that neither a 202 nor a wholly
refused request explains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.chaos_refused import Refusals, sort_refusals
from bench.chaos_store import StoreContent
from bench.chaos_submit import ACKNOWLEDGED, REFUSED, WRONG, Answer
from bench.chaos_workload import Workload

__all__ = ["Check", "Recovery", "verify"]

STORED = "stored"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expected: object
    actual: object
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """A check without ``expected`` only informs."""
        return self.expected is None or self.expected == self.actual


@dataclass(frozen=True, slots=True)
class Recovery:
    """Observed just before the processes were stopped."""

    front_restarts: int
    """Fresh fronts started after a SIGKILL."""
    front_alive: bool
    readyz_status: int | None
    survivor_alive: bool
    queues: dict[str, tuple[int, int, int]]
    """The topology's queues at the end: name -> (ready, unacked, consumers)."""
    work_queue: str
    dead_queue: str
    workers: int


@dataclass
class _Ledger:
    """The items of every request, sorted by what the client was told."""

    acked_items: dict[tuple[str, int], str] = field(default_factory=dict)
    acked_entities: set[str] = field(default_factory=set)
    acked_pairs: dict[str, tuple[str, int]] = field(default_factory=dict)
    refused_entities: set[str] = field(default_factory=set)
    refused_pairs: set[str] = field(default_factory=set)
    jobs: dict[str, int] = field(default_factory=dict)
    described: dict[str, str] = field(default_factory=dict)
    """job ID -> what and when (for the examples of a failed check)."""

    @classmethod
    def of(cls, answers: list[Answer]) -> _Ledger:
        ledger = cls()
        for answer in answers:
            entities = answer.kind == "entities"
            if answer.verdict == ACKNOWLEDGED and answer.job_id:
                ledger.jobs[answer.job_id] = len(answer.keys)
                ledger.described[answer.job_id] = (
                    f"{answer.job_id} ({len(answer.keys)} {answer.kind}, step {answer.step}, "
                    f"sent at {answer.sent:.1f} s, 202 at {answer.answered:.1f} s)"
                )
                for index, key in enumerate(answer.keys):
                    ledger.acked_items[(answer.job_id, index)] = key
                    if entities:
                        ledger.acked_entities.add(key)
                    else:
                        ledger.acked_pairs[key] = (answer.job_id, index)
            elif answer.verdict == REFUSED:
                (ledger.refused_entities if entities else ledger.refused_pairs).update(answer.keys)
        return ledger


def _few(values: Any, n: int = 5) -> tuple[str, ...]:
    return tuple(str(v) for v in list(values)[:n])


def verify(
    workload: Workload,
    answers: list[Answer],
    polled: dict[str, dict[str, Any]],
    store: StoreContent,
    recovery: Recovery,
    faults: Sequence[tuple[str, float]] = (),
) -> list[Check]:
    """Every check of the scenario, in the order they are printed; ``faults`` lists each
    injected fault's name and when (seconds into the stream) it ended."""
    led = _Ledger.of(answers)
    refusals = sort_refusals(answers, store, workload.ends, led.acked_entities, led.jobs)
    verdicts = Counter(answer.verdict for answer in answers)
    checks = [
        Check(
            "requests with an unexpected answer",
            0,
            verdicts[WRONG],
            _few(f"step {a.step}: {a.detail}" for a in answers if a.verdict == WRONG),
        )
    ]
    checks += _job_checks(led, polled, store, refusals)
    checks += _association_checks(workload, led, store, refusals)
    checks += _refusal_checks(led, store, refusals)
    checks += _counted_once_checks(workload, answers, store)
    front_kills = sum(1 for name, _ in faults if name == "kill_front")
    checks += [
        Check(
            "front: a fresh one started after each SIGKILL", front_kills, recovery.front_restarts
        ),
        Check("front: alive at the end", True, recovery.front_alive),
        Check("front: GET /readyz", 200, recovery.readyz_status),
        *_resumed(answers, faults),
        Check("worker never killed: still alive", True, recovery.survivor_alive),
        *_queue_checks(recovery),
    ]
    return checks


_BACK = {"kill_broker": "the broker", "kill_front": "the front"}


def _resumed(answers: list[Answer], faults: Sequence[tuple[str, float]]) -> list[Check]:
    """After the last fault of each kind that takes a process away, requests went through."""
    last: dict[str, float] = {}
    for name, ended in faults:
        if name in _BACK:
            last[_BACK[name]] = max(last.get(_BACK[name], ended), ended)
    return [
        Check(
            f"requests acknowledged after {what} was back",
            True,
            any(a.verdict == ACKNOWLEDGED and a.sent > back for a in answers),
        )
        for what, back in last.items()
    ]


def _counted_once_checks(
    workload: Workload, answers: list[Answer], store: StoreContent
) -> list[Check]:
    """No logical request counted twice (module docstring), with how often clients retried."""
    retried = [a for a in answers if a.attempts > max(1, len(a.job_ids))]
    repeated = [a for a in answers if len(a.job_ids) > 1]
    split = [f"step {a.step}: {sorted(set(a.job_ids))}" for a in answers if len(set(a.job_ids)) > 1]
    twice = sorted(
        {
            a.step
            for a in answers
            if a.kind == "associations"
            for pair in a.keys
            if pair in store.associations and store.associations[pair][2] > 1
        }
    )
    return [
        Check("logical requests sent more than once (retried)", None, len(retried)),
        Check("  ... sends in all", None, sum(a.attempts for a in answers)),
        Check("acknowledged requests sent again with their key", None, len(repeated)),
        Check(
            "202s that replayed an earlier attempt's job", None, sum(a.replayed for a in answers)
        ),
        Check("logical requests answered with two jobIDs", 0, len(split), _few(split)),
        Check(
            "logical requests with a pair submitted twice",
            0,
            len(twice),
            _few(f"step {step}" for step in twice),
        ),
    ]


def _queue_checks(recovery: Recovery) -> list[Check]:
    work = recovery.queues.get(recovery.work_queue, (-1, -1, -1))
    dead = recovery.queues.get(recovery.dead_queue, (-1, -1, -1))
    others = sum(
        r + u
        for name, (r, u, _) in recovery.queues.items()
        if name not in (recovery.work_queue, recovery.dead_queue)
    )
    return [
        Check("consumers on the work queue", recovery.workers, work[2]),
        Check("messages left in the work queue", 0, work[0] + work[1]),
        Check("messages left in the retry queues", 0, others),
        Check("dead letters", 0, dead[0] + dead[1]),
    ]


def _job_checks(
    led: _Ledger, polled: dict[str, dict[str, Any]], store: StoreContent, refusals: Refusals
) -> list[Check]:
    unfinished = [
        job for job in led.jobs if polled.get(job, {}).get("status") not in ("done", "failed")
    ]
    wrong_counts = []
    for job, total in led.jobs.items():
        body = polled.get(job, {})
        counts = body.get("counts") or {}
        if body.get("total") != total or sum(counts.values()) != total:
            wrong_counts.append(f"{job}: total {body.get('total')}/{total}, counts {counts}")
    missing = [key for key in led.acked_items if key not in store.outcomes]
    explained = refusals.jobs
    foreign_jobs = {job for job in store.jobs if job not in led.jobs and job not in explained}
    foreign_items = [k for k in store.outcomes if k[0] not in led.jobs and k[0] not in explained]
    return [
        Check(
            "acknowledged jobs done or failed (GET /jobs)",
            len(led.jobs),
            len(led.jobs) - len(unfinished),
            _few(led.described[j] for j in unfinished),
        ),
        Check(
            "jobs whose counts do not sum to their total", 0, len(wrong_counts), _few(wrong_counts)
        ),
        Check(
            "acknowledged items with one outcome in the store",
            len(led.acked_items),
            len(led.acked_items) - len(missing),
            _few(missing),
        ),
        Check(
            "outcome rows in the store",
            len(led.acked_items) + refusals.outcome_rows,
            store.outcome_rows,
        ),
        Check(
            "jobs in the store that no 202 acknowledged", 0, len(foreign_jobs), _few(foreign_jobs)
        ),
        Check("outcomes of items of unacknowledged jobs", 0, len(foreign_items)),
    ]


def _association_checks(
    workload: Workload, led: _Ledger, store: StoreContent, refusals: Refusals
) -> list[Check]:
    outcome_of = {pair: store.outcomes.get(key) for pair, key in led.acked_pairs.items()}
    entities = led.acked_entities | refusals.written("entities")
    should_store = {pair for pair in led.acked_pairs if set(workload.ends(pair)) <= entities}
    ended_stored = {pair for pair, out in outcome_of.items() if out and out[0] == STORED}
    wrong_outcome = [
        f"{pair}: {outcome_of[pair]}"
        for pair in led.acked_pairs
        if (pair in should_store) != (pair in ended_stored)
        or (pair not in should_store and outcome_of[pair] != ("rejected", "entity_not_found"))
    ]
    refused_stored = refusals.written("associations")
    explained = ended_stored | refused_stored
    absent = [p for p in ended_stored if p not in store.associations]
    wrong_ends = [
        p
        for p in explained
        if p in store.associations and store.associations[p][:2] != workload.ends(p)
    ]
    resubmitted = [f"{p}: {rec[2]}" for p, rec in store.associations.items() if rec[2] != 1]
    unexpected = [p for p in store.associations if p not in explained]
    missing_entities = led.acked_entities - store.entities
    return [
        Check("acknowledged pairs with both entities acknowledged", None, len(should_store)),
        Check("  ... that ended stored", len(should_store), len(ended_stored & should_store)),
        Check(
            "acknowledged pairs with a wrong outcome", 0, len(wrong_outcome), _few(wrong_outcome)
        ),
        Check(
            "association records in the store",
            len(ended_stored) + len(refused_stored),
            store.association_rows,
        ),
        Check("stored pairs absent from the store", 0, len(absent), _few(absent)),
        Check("records with wrong ends", 0, len(wrong_ends), _few(wrong_ends)),
        Check("records with submissions != 1", 0, len(resubmitted), _few(resubmitted)),
        Check("records that no stored outcome explains", 0, len(unexpected), _few(unexpected)),
        Check(
            "acknowledged entities in the store",
            len(led.acked_entities),
            len(led.acked_entities) - len(missing_entities),
            _few(missing_entities),
        ),
    ]


def _refusal_checks(led: _Ledger, store: StoreContent, refusals: Refusals) -> list[Check]:
    half = refusals.half_written
    extra_entities = store.entities - led.acked_entities - led.refused_entities
    return [
        Check(
            "refused requests processed anyway (confirm lost; a client retry is harmless)",
            None,
            len(refusals.processed),
            _few(r.describe() for r in refusals.processed),
        ),
        Check("refused requests half-written", 0, len(half), _few(r.describe() for r in half)),
        Check("entities in the store never submitted", 0, len(extra_entities)),
    ]
