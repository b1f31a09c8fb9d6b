"""The configuration and the printed report of a chaos run (``bench.chaos``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.chaos_check import Check
from bench.chaos_faults import FaultRecord
from bench.chaos_store import StoreContent
from bench.chaos_submit import ACKNOWLEDGED, REFUSED, Answer

__all__ = ["ChaosConfig", "ChaosReport"]


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """One chaos run; the defaults are the full scenario of ``make chaos``."""

    associations: int = 20_000
    batch: int = 200
    duration: float = 60.0
    worker_kills: int = 2
    broker_kills: int = 1
    broker_down: float = 5.0
    """Seconds between the SIGKILL of the broker node and its restart."""
    front_kills: int = 1
    store_lock: float = 10.0
    """Seconds the store is unavailable (0: not at all)."""
    entity_wait: float = 120.0
    retry_for: float = 120.0
    """Seconds the client retries one logical request before it counts as refused."""
    repeat_every: int = 5
    """Every n-th acknowledged request is sent again with its key (0: never)."""
    drain_timeout: float | None = None
    """Seconds to wait for the jobs after the stream; default ``entity_wait + 120``."""
    settle_timeout: float = 65.0
    """Seconds to wait, once the jobs are finished, for the work and retry queues to empty
    (a duplicate copy of a message may still wait in a delay queue: the longest tier is 60 s)."""
    mongodb_url: str | None = None
    """Run on the MongoDB server at this URL (a database of the run's own, dropped when all is
    well) instead of the embedded store; ``store_lock`` must then be 0 (it locks the embedded
    store's file)."""
    work_dir: Path | None = None
    """Where the store and logs go; default a temporary directory, removed if all is well."""

    def schedule(self) -> list[tuple[float, str]]:
        """(seconds after the stream began, fault name), evenly spaced over the first three
        quarters of the stream, so that the stream goes on after the last fault."""
        kills = ["kill_worker"] * self.worker_kills
        names = [*kills[:1], *(["lock_store"] if self.store_lock > 0 else [])]
        names += ["kill_broker"] * self.broker_kills + ["kill_front"] * self.front_kills
        names += kills[1:]
        step = 0.75 * self.duration / (len(names) + 1)
        return [((i + 1) * step, name) for i, name in enumerate(names)]


@dataclass
class ChaosReport:
    config: ChaosConfig
    checks: list[Check]
    faults: list[FaultRecord]
    answers: list[Answer]
    left_out: int
    store: StoreContent
    events: Counter[str]
    stream_seconds: float
    drain_seconds: float
    settle_seconds: float
    work_dir: Path

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def render(self) -> str:
        c = self.config
        store = "MongoDB" if c.mongodb_url else "the embedded store"
        lines = [
            f"chaos on {store}: {c.associations} associations (and their entities) in bulk"
            " requests of "
            f"{c.batch}, stream {self.stream_seconds:.1f} s "
            f"(paced at {c.duration:.0f} s), jobs finished {self.drain_seconds:.1f} s later, "
            f"queues empty {self.settle_seconds:.1f} s after that",
            "",
            "faults (seconds after the stream began):",
        ]
        lines += [
            f"  {f.began:7.1f} .. {f.ended:7.1f}  {f.name:<12} {f.detail}" for f in self.faults
        ]
        lines += ["", "requests:"]
        for kind in ("entities", "associations"):
            mine = [a for a in self.answers if a.kind == kind]
            by = Counter(a.verdict for a in mine)
            items: Counter[str] = Counter()
            for answer in mine:
                items[answer.verdict] += len(answer.keys)
            sends = sum(answer.attempts for answer in mine)
            retried = sum(1 for answer in mine if answer.attempts > max(1, len(answer.job_ids)))
            lines.append(
                f"  {kind:<13} {len(mine):4} requests: {by[ACKNOWLEDGED]} acknowledged "
                f"({items[ACKNOWLEDGED]} items), {by[REFUSED]} refused ({items[REFUSED]} items)"
                + (
                    f", {self.left_out} pairs left out (refused entity)"
                    if kind != "entities"
                    else ""
                )
                + f"; {sends} sends, {retried} requests retried"
            )
        outcomes = Counter(
            f"{out}{f' ({code})' if code else ''}" for out, code in self.store.outcomes.values()
        )
        lines += ["", "item outcomes in the store:"]
        lines += [f"  {name:<40} {n:7}" for name, n in sorted(outcomes.items())]
        lines += ["", "log events (process: event):"]
        lines += [f"  {name:<48} {n:7}" for name, n in sorted(self.events.items())]
        width = max([52, *(len(check.name) for check in self.checks)])
        lines += ["", f"  {'check':<{width}} {'expected':>9} {'actual':>9}"]
        for check in self.checks:
            mark = "ok" if check.ok else "FAIL"
            expected = "-" if check.expected is None else str(check.expected)
            lines.append(f"  {check.name:<{width}} {expected:>9} {check.actual!s:>9}  {mark}")
            if not check.ok:
                lines += [f"      e.g. {example}" for example in check.examples]
        lines += ["", "CHAOS PASSED" if self.ok else f"CHAOS FAILED (logs in {self.work_dir})"]
        return "\n".join(lines)
