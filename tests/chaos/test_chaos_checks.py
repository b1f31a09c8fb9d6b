"""The chaos checks on synthetic answers and store content (no broker, no processes).

A request refused with a 503 may still have been enqueued (the publisher confirm was lost in a
broker restart): the checks must accept such a request when it is wholly processed, count it,
and still fail on a refused request written in part and on any job nothing explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.chaos_check import Check, Recovery, verify
from bench.chaos_store import StoreContent
from bench.chaos_submit import ACKNOWLEDGED, REFUSED, Answer
from bench.chaos_workload import ASSOCIATION_TYPE, build_workload

WORKLOAD = build_workload(300, batch=100)
ENTITIES, PAIRS_1, PAIRS_2, PAIRS_3 = range(4)
PROCESSED_ANYWAY = "refused requests processed anyway (confirm lost; a client retry is harmless)"
RECOVERED = Recovery(0, True, 200, True, {"w": (0, 0, 2), "d": (0, 0, 0)}, "w", "d", 2)


@dataclass
class Scenario:
    """What the client was told, and what the pipeline wrote, request by request."""

    answers: list[Answer] = field(default_factory=list)
    associations: dict[str, tuple[str, str, int, str]] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)
    jobs: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    outcomes: dict[tuple[str, int], tuple[str, str | None]] = field(default_factory=dict)

    def request(self, step: int, verdict: str, job: str | None = None) -> Answer:
        plan = WORKLOAD.steps[step]
        answer = Answer(step, plan.kind, plan.keys, verdict, 202, job, "", step, step + 0.1)
        self.answers.append(answer)
        return answer

    def process(self, answer: Answer, job: str, items: int | None = None) -> None:
        """The pipeline writes the first ``items`` items of ``answer`` (all by default)."""
        self.jobs[job] = len(answer.keys)
        self.kinds[job] = "entity" if answer.kind == "entities" else "association"
        for index, key in enumerate(answer.keys[:items]):
            if answer.kind == "entities":
                self.entities.add(key)
                self.outcomes[(job, index)] = ("stored", None)
            elif set(WORKLOAD.ends(key)) <= self.entities:
                ends = WORKLOAD.ends(key)
                self.associations[key] = (*ends, 1, f'["{ASSOCIATION_TYPE}"]')
                self.outcomes[(job, index)] = ("stored", None)
            else:
                self.outcomes[(job, index)] = ("rejected", "entity_not_found")

    def checks(self) -> dict[str, Check]:
        store = StoreContent(
            self.associations,
            len(self.associations),
            self.entities,
            len(self.entities),
            self.jobs,
            self.outcomes,
            len(self.outcomes),
            self.kinds,
        )
        polled = {
            a.job_id: {"status": "done", "total": len(a.keys), "counts": {"any": len(a.keys)}}
            for a in self.answers
            if a.job_id and a.verdict == ACKNOWLEDGED
        }
        return {c.name: c for c in verify(WORKLOAD, self.answers, polled, store, RECOVERED)}


def acknowledged(s: Scenario, step: int, job: str) -> None:
    s.process(s.request(step, ACKNOWLEDGED, job), job)


def failed(checks: dict[str, Check]) -> set[str]:
    return {name for name, check in checks.items() if not check.ok}


def test_a_refused_request_absent_from_the_store_passes_with_none_processed_anyway() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    acknowledged(s, PAIRS_1, "j-1")
    s.request(PAIRS_2, REFUSED)
    acknowledged(s, PAIRS_3, "j-3")
    checks = s.checks()
    assert failed(checks) == set()
    assert checks[PROCESSED_ANYWAY].actual == 0


def test_a_refused_request_wholly_processed_passes_and_is_counted() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    acknowledged(s, PAIRS_1, "j-1")
    s.process(s.request(PAIRS_2, REFUSED), "j-confirm-lost")
    acknowledged(s, PAIRS_3, "j-3")
    checks = s.checks()
    assert failed(checks) == set()
    assert checks[PROCESSED_ANYWAY].actual == 1
    assert checks["association records in the store"].actual == 300


def test_a_partly_written_refused_request_fails_as_half_written() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    acknowledged(s, PAIRS_1, "j-1")
    s.process(s.request(PAIRS_2, REFUSED), "j-half", items=40)
    acknowledged(s, PAIRS_3, "j-3")
    checks = s.checks()
    assert checks["refused requests half-written"].actual == 1
    assert checks[PROCESSED_ANYWAY].actual == 0
    assert "records that no stored outcome explains" in failed(checks)
    assert "jobs in the store that no 202 acknowledged" in failed(checks)


def test_a_job_that_no_request_explains_still_fails() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    acknowledged(s, PAIRS_1, "j-1")
    s.request(PAIRS_2, REFUSED)
    s.jobs["j-ghost"] = 100
    s.kinds["j-ghost"] = "association"
    s.outcomes.update({("j-ghost", i): ("stored", None) for i in range(100)})
    checks = s.checks()
    assert failed(checks) == {
        "jobs in the store that no 202 acknowledged",
        "outcomes of items of unacknowledged jobs",
        "outcome rows in the store",
    }
    assert checks[PROCESSED_ANYWAY].actual == 0


def test_pairs_of_a_refused_entity_request_processed_anyway_must_end_stored() -> None:
    s = Scenario()
    s.process(s.request(ENTITIES, REFUSED), "j-entities-confirm-lost")
    acknowledged(s, PAIRS_1, "j-1")
    checks = s.checks()
    assert failed(checks) == set()
    assert checks[PROCESSED_ANYWAY].actual == 1
    assert checks["  ... that ended stored"].actual == 100


def test_pairs_of_a_refused_entity_request_never_enqueued_end_rejected() -> None:
    s = Scenario()
    s.request(ENTITIES, REFUSED)
    acknowledged(s, PAIRS_1, "j-1")
    checks = s.checks()
    assert failed(checks) == set()
    assert checks["  ... that ended stored"].actual == 0
    assert checks["acknowledged pairs with a wrong outcome"].actual == 0


# retries with idempotency keys ---------------------------------------------------------------
def retried(s: Scenario, step: int, job: str, job_ids: tuple[str, ...]) -> Answer:
    """A request acknowledged after a retry; ``job_ids`` are the jobIDs its 202s named."""
    answer = s.request(step, ACKNOWLEDGED, job)
    answer.attempts = 1 + len(job_ids)
    answer.job_ids = job_ids
    s.process(answer, job)
    return answer


def test_a_retried_request_that_ended_in_one_job_passes() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    retried(s, PAIRS_1, "j-1", ("j-1", "j-1"))
    checks = s.checks()
    assert failed(checks) == set()
    assert checks["logical requests sent more than once (retried)"].actual == 1
    assert checks["acknowledged requests sent again with their key"].actual == 1


def test_a_retry_answered_with_another_job_fails() -> None:
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    retried(s, PAIRS_1, "j-1", ("j-1", "j-other"))
    assert "logical requests answered with two jobIDs" in failed(s.checks())


def test_a_retry_whose_first_attempt_was_processed_as_another_job_fails() -> None:
    """What happens without idempotency keys: the 503'd attempt is a second job."""
    s = Scenario()
    acknowledged(s, ENTITIES, "j-entities")
    answer = retried(s, PAIRS_1, "j-1", ("j-1",))
    s.process(answer, "j-first-attempt")
    for pair in answer.keys:
        entity, related, submissions, types = s.associations[pair]
        s.associations[pair] = (entity, related, submissions + 1, types)
    assert {
        "logical requests with a pair submitted twice",
        "records with submissions != 1",
        "jobs in the store that no 202 acknowledged",
    } <= failed(s.checks())
