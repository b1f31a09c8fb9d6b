"""Following submitted jobs to their end: wait for them, add up their outcomes, and write the
errors of their items to a file a person (or a script) can read.

``wait_for_jobs`` polls ``GET /jobs/{jobID}`` until every job is ``done`` or ``failed`` (or the
time is up); ``JobsSummary`` adds their counts up (stored, duplicate, rejected by reason,
waiting: items without an outcome yet); ``write_item_errors`` writes one NDJSON line per refused
or rejected item, with the source line when it is known.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assoc_ingest.client import IngestClient, SubmitError

FINISHED = frozenset({"done", "failed"})
MAX_ERRORS_PER_JOB = 100
"""Item errors ``GET /jobs/{jobID}`` reports at most: rejection reasons beyond are counted
under ``(not listed)``."""


@dataclass
class JobsSummary:
    """The outcomes of several jobs added up."""

    jobs: int = 0
    finished: int = 0
    total: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        """Items without an outcome yet (queued, or waiting for an entity)."""
        return self.total - sum(self.counts.values())

    @classmethod
    def of(
        cls, statuses: Iterable[Mapping[str, Any]], lines: Mapping[str, Sequence[int]] | None = None
    ) -> JobsSummary:
        """The sum of ``statuses`` (``GET /jobs/{jobID}`` bodies); ``lines`` maps a job's item
        index to the source line it came from, when known."""
        summary = cls()
        for status in statuses:
            summary.jobs += 1
            summary.finished += status.get("status") in FINISHED
            summary.total += int(status.get("total", 0))
            counts = status.get("counts") or {}
            summary.counts.update({k: int(v) for k, v in counts.items() if v})
            listed = 0
            job_lines = (lines or {}).get(status["jobID"], ())
            for error in status.get("errors") or []:
                listed += 1
                summary.rejected_by_reason[error.get("code", "?")] += 1
                entry = {"jobID": status["jobID"], "index": error.get("index")}
                index = error.get("index")
                if isinstance(index, int) and 0 <= index < len(job_lines):
                    entry["line"] = job_lines[index]
                entry.update(code=error.get("code"), message=error.get("message"))
                summary.errors.append(entry)
            unlisted = int(counts.get("rejected", 0)) - listed
            if unlisted > 0:
                summary.rejected_by_reason["(not listed)"] += unlisted
        return summary

    def lines(self) -> list[str]:
        """The summary for a terminal, one fact a line."""
        counts = self.counts
        head = (
            f"{self.jobs} jobs, {self.total} items: {counts['stored']} stored, "
            f"{counts['duplicate']} duplicate, {counts['rejected']} rejected, "
            f"{self.waiting} waiting"
        )
        if counts["deleted"] or counts["not_found"]:
            head += f", {counts['deleted']} deleted, {counts['not_found']} not found"
        found = [head]
        for reason, count in self.rejected_by_reason.most_common():
            found.append(f"  rejected {count}: {reason}")
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "finished": self.finished,
            "items": self.total,
            "counts": dict(self.counts),
            "waiting": self.waiting,
            "rejectedByReason": dict(self.rejected_by_reason),
        }


async def job_status(client: IngestClient, job_id: str) -> dict[str, Any]:
    """The ``GET /jobs/{jobID}`` body of a job; a job the front does not show yet (it
    registers accepted jobs in the background) reads as queued with no items known."""
    try:
        found: dict[str, Any] = await client.get_json(f"jobs/{job_id}")
    except SubmitError as err:
        if err.status != 404:
            raise
        return {"jobID": job_id, "status": "queued", "total": 0, "counts": {}, "errors": []}
    return found


async def job_statuses(client: IngestClient, job_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The current ``GET /jobs/{jobID}`` body of each job, in order."""
    return list(await asyncio.gather(*(job_status(client, job) for job in job_ids)))


async def wait_for_jobs(
    client: IngestClient,
    job_ids: Sequence[str],
    *,
    timeout: float,
    interval: float = 1.0,
) -> list[dict[str, Any]]:
    """Poll the jobs until all are ``done`` or ``failed`` or ``timeout`` seconds have passed;
    their last statuses. A job the front does not show yet (it registers accepted jobs in the
    background) is asked again."""
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(job_ids))
    finished: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    while True:
        for job, status in zip(pending, await job_statuses(client, pending), strict=True):
            last[job] = status
            if status.get("status") in FINISHED:
                finished[job] = status
        pending = [job for job in pending if job not in finished]
        if not pending or time.monotonic() >= deadline:
            return [last[job] for job in dict.fromkeys(job_ids)]
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def write_item_errors(
    path: Path,
    front_rejected: Iterable[tuple[int, Mapping[str, Any]]],
    summary: JobsSummary,
) -> int:
    """Write one JSON line per item error to ``path``: those the front refused at once (by
    source line) then those the workers rejected (job, index, source line); how many."""
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for line, error in front_rejected:
            entry = {"line": line, "stage": "front", **dict(error)}
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            written += 1
        for error in summary.errors:
            out.write(json.dumps({"stage": "worker", **error}, ensure_ascii=False) + "\n")
            written += 1
    return written
