"""Schemathesis against the whole front, served as in production (``python -m bench.fuzz``).

Starts ``assoc-ingest dev`` (front and workers) on a free localhost port with the memory queue
(or RabbitMQ from ``AMQP_URL`` with ``--broker``) and the embedded store in a temporary
directory, creates an admin+reporter+user key and a user-only key with the CLI, and sends
schemathesis cases generated from ``/openapi.json`` to EVERY operation, under several
credentials: the admin key and an admin JWT (positive and negative cases), a user-only key
(403s), none, and bad ones (wrong secret, unknown key, expired or forged JWT, both kinds).
Some admin cases draw entity IDs and type names from known values (``fuzz_schema.steered``)
so that generated writes also reach the matrix and a 202; a few valid requests of every
write and read are sent first so that every 2xx body is checked too.

It fails (exit 1) on any 5xx, any non-2xx without the error body
``{"error": {"code", "message", "errorID"}}`` and matching ``x-error``/``x-error-id`` headers,
any 2xx body not conforming to its documented schema, any crash logged by the front, or fewer
than ``--min-cases`` cases in all. Each failure is printed with a curl reproducing it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, strategies
from schemathesis import GenerationMode

import tests.ingest_api.test_fuzz  # noqa: F401  # registers the application/x-ndjson serializer
from bench.common import delete_topology, unique
from bench.fuzz_checks import Tally, response_problems
from bench.fuzz_front import JWT_SECRET, Front, Headers, crashes_logged, served_front, token
from bench.fuzz_schema import documented_operations, load_operations, send_valid_cases, steered


@dataclass(frozen=True)
class Variant:
    """A way of calling: generation mode, how many examples (times the base), credentials."""

    name: str
    mode: GenerationMode
    weight: int
    headers: Callable[[Front, int], Headers]
    steered: bool = False


def _bad_credentials(front: Front, index: int) -> Headers:
    key = front.admin["api-key"]
    choices: list[Headers] = [
        {"api-key": key, "api-secret": "not-the-secret"},
        {"api-key": "unknown-key", "api-secret": front.admin["api-secret"]},
        {"api-key": key},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": "Bearer " + token(["admin"], expires_in=-60)},
        {"Authorization": "Bearer " + token(["admin"], secret="forged-" + JWT_SECRET)},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {**front.admin, "Authorization": "Bearer " + token(["admin"])},
    ]
    return choices[index % len(choices)]


VARIANTS = (
    Variant("admin key", GenerationMode.POSITIVE, 2, lambda front, _: front.admin),
    Variant("admin key, known IDs", GenerationMode.POSITIVE, 2, lambda f, _: f.admin, True),
    Variant("admin key, negative", GenerationMode.NEGATIVE, 2, lambda front, _: front.admin),
    Variant(
        "admin JWT",
        GenerationMode.POSITIVE,
        1,
        lambda _, __: {"Authorization": "Bearer " + token(["admin", "reporter", "user"])},
    ),
    Variant("user-only key", GenerationMode.POSITIVE, 1, lambda front, _: front.user_only),
    Variant("no credentials", GenerationMode.POSITIVE, 1, lambda _, __: {}),
    Variant("bad credentials", GenerationMode.POSITIVE, 1, _bad_credentials),
)


def _caller(
    label: str, variant: Variant, front: Front, session: requests.Session, tally: Tally
) -> Callable[[Any], None]:
    """The body of one hypothesis test: send a case, check the answer, tally it."""
    calls = 0

    def call(case: Any) -> None:
        nonlocal calls
        headers = variant.headers(front, calls)
        calls += 1
        try:
            response = case.call(
                base_url=front.base_url, session=session, headers=headers, timeout=60
            )
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL):
            tally.unsendable[label] += 1  # requests refuses to send it: nothing reached us
            return
        tally.cases[label] += 1
        status = str(response.status_code)
        tally.statuses.setdefault(label, Counter())[status[0] + "xx"] += 1
        for problem in response_problems(case, response, front):
            curl = case.as_curl_command(headers=headers, base_url=front.base_url)
            tally.fail(
                label,
                f"{problem} ({variant.name})",
                [f"status {status}: {response.text[:300]!r}", curl],
            )

    return call


def fuzz_operation(
    operations: tuple[Any, Any],
    front: Front,
    session: requests.Session,
    base: int,
    seed: int,
    tally: Tally,
) -> None:
    """Run every variant against one operation (``operations``: as documented, and steered)."""
    label = operations[0].label
    for variant in VARIANTS:
        call = _caller(label, variant, front, session, tally)
        operation = operations[1] if variant.steered else operations[0]
        strategy: strategies.SearchStrategy[Any] = operation.as_strategy(
            generation_mode=variant.mode
        )
        test: Callable[[], None] = hypothesis.seed(seed)(
            hypothesis.settings(
                max_examples=base * variant.weight,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(hypothesis.given(strategy)(call))
        )
        try:
            test()
        except (hypothesis.errors.Unsatisfiable, schemathesis.errors.SchemathesisError) as exc:
            tally.unsendable[label] += 0  # keep the operation listed
            print(f"  {label} [{variant.name}]: no such cases ({type(exc).__name__})", flush=True)


def report(tally: Tally, crashes: list[str], min_cases: int, seeded: int) -> int:
    total = sum(tally.cases.values()) - seeded
    print(f"\n{'operation':<52} {'cases':>6} {'2xx':>5} {'4xx':>5} {'5xx':>5}")
    for label in sorted(set(tally.cases) | set(tally.unsendable)):
        statuses = tally.statuses.get(label, Counter())
        print(
            f"{label:<52} {tally.cases[label]:>6} {statuses['2xx']:>5} "
            f"{statuses['4xx']:>5} {statuses['5xx']:>5}"
        )
    print(f"{'TOTAL (generated)':<52} {total:>6}")
    print(f"(plus {seeded} valid seed cases; {sum(tally.unsendable.values())} not sendable)")
    failed = False
    for (label, problem), detail in sorted(tally.failures.items()):
        failed = True
        count = tally.failure_counts[(label, problem)]
        print(f"\nFAIL {label}: {problem} x{count}\n  {detail[0]}\n  reproduce: {detail[1]}")
    if tally.failures:
        print("\n(credentials in the curls show as [Filtered]: put a key of a front of yours)")
    if crashes:
        failed = True
        print(f"\nFAIL the front logged {len(crashes)} error(s); first:\n  {crashes[0]}")
    without = [label for label, count in tally.cases.items() if count == 0]
    if without:
        failed = True
        print(f"\nFAIL operations without a single case: {', '.join(without)}")
    if total < min_cases:
        failed = True
        print(f"\nFAIL only {total} cases, fewer than {min_cases}")
    print(f"\nfuzz: {total} cases, {len(tally.failures)} distinct failures:", end=" ")
    print("FAILED" if failed else "passed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("--examples", type=int, default=12, help="base examples per variant")
    parser.add_argument("--min-cases", type=int, default=1000, help="fail below this total")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (random)")
    parser.add_argument("--broker", action="store_true", help="RabbitMQ from AMQP_URL")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"fuzz: seed {seed} (rerun with --seed {seed})", flush=True)
    broker = unique("fuzz") if args.broker else None
    tally = Tally()
    try:
        with tempfile.TemporaryDirectory() as tmp, served_front(Path(tmp), broker) as front:
            # from_dict, not from_url: from_url leaves out the operation serving the document.
            document = requests.get(front.base_url + "/openapi.json", timeout=30).json()
            operations = load_operations(document)
            steered_operations = load_operations(steered(document))
            documented = documented_operations(document)
            tally.cases.update(dict.fromkeys(documented | set(operations), 0))
            print(f"fuzz: {len(operations)} operations at {front.base_url}", flush=True)
            with requests.Session() as session:
                seeded = send_valid_cases(operations, front, session, tally)
                for label, operation in operations.items():
                    pair = (operation, steered_operations[label])
                    fuzz_operation(pair, front, session, args.examples, seed, tally)
                    print(f"  {label}: {tally.cases[label]} cases", flush=True)
            time.sleep(1.0)  # let the workers finish what was queued before reading the log
            crashes = crashes_logged(front.log)
    finally:
        if broker is not None:
            delete_topology(broker)
    return report(tally, crashes, args.min_cases, seeded)


if __name__ == "__main__":
    sys.exit(main())
