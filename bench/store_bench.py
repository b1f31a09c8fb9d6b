"""Throughput of the embedded store on the worker's hot path, against raw SQL.

- ``store_new_rows_per_s``: new associations with random SHA3 keys, written through
  ``SqliteStore.write_batch`` in batches of ``batch`` items with their job header, job items and
  the submitting user's source entry, exactly as a worker writes them;
- ``store_duplicate_rows_per_s``: the same associations submitted again by new jobs (every
  item ``duplicate``: ``lastSeen`` and ``submissions`` refreshed);
- ``store_new_rows_per_s_4_tasks``: new associations again, with batches submitted by 4
  concurrent tasks as a worker with ``INGEST_WORKER_CONCURRENCY=4`` does (group commit);
- ``baseline_rows_per_s``: the raw-SQL baseline the issue quotes: one ``executemany`` upsert
  per batch into a rowid table with the same indexes, SQLite's default settings, no job items.

Run ``python -m bench.store_bench [--rows N] [--batch B] [--repeat R]``; it prints the median
of each figure over the repeats. Before and after the 64-bit key layout of ``sqlite_schema``
(2-core development VM, shared with other work, same sitting; batches of 1,000):

=============================  ===========  ==========  ============  ===========
figure (rows/s)                200k before  200k after  1M before     1M after
=============================  ===========  ==========  ============  ===========
store_new_rows_per_s           14.5k        41.8k       10.8k         22.7k
store_duplicate_rows_per_s     63.2k        90.7k       64.4k         91.7k
store_new_rows_per_s_4_tasks   17.4k        55.3k       11.6k         30.0k
baseline_rows_per_s (raw SQL)  12.0k        14.3k       10.0k         10.1k
=============================  ===========  ==========  ============  ===========

(``--rows 1000000 --repeat 1``: the rate is the mean over the growing table, 0 to 1M rows.)
Random hash keys make every commit write about one page per hash-keyed index per row to the
WAL once the indexes are larger than a batch; the layout keeps those indexes small (see
``workers/store/sqlite_schema.py``) and group commit makes batches larger.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from workers.store.records import EdgeWrite, JobHeader, WriteBatch
from workers.store.sources import source_entries
from workers.store.sqlite import SqliteStore

_Row = tuple[str, str, str]  # association ID, entity ID, related entity ID


def _rows(count: int, seed: int) -> list[_Row]:
    rng = random.Random(seed)
    rows: list[_Row] = []
    for _ in range(count):
        url = "url-" + hashlib.sha3_256(rng.randbytes(16)).hexdigest()
        domain = "domain-" + hashlib.sha3_256(rng.randbytes(16)).hexdigest()
        rows.append((hashlib.sha3_256((url + domain).encode()).hexdigest(), url, domain))
    return rows


def _batches(rows: list[_Row], size: int, round_: int) -> list[WriteBatch]:
    batches: list[WriteBatch] = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        job = f"bench-{round_}-{start:09d}"
        now = time.time()
        sources = source_entries("bench", None, now)
        batches.append(
            WriteBatch(
                now=now,
                jobs=[JobHeader(job, "association", "bench", (), len(chunk), now)],
                edges=[
                    EdgeWrite(
                        key=(job, index),
                        association_id=aid,
                        entity_id=url,
                        related_id=domain,
                        entity_type="url",
                        related_type="domain",
                        association_type="URL Host",
                        file_action=False,
                        created_by="bench",
                        sources=sources,
                    )
                    for index, (aid, url, domain) in enumerate(chunk)
                ],
            )
        )
    return batches


async def _store_rate(store: SqliteStore, batches: list[WriteBatch], tasks: int) -> float:
    pending = iter(batches)

    async def submit() -> None:
        for batch in pending:
            await store.write_batch(batch)

    started = time.perf_counter()
    await asyncio.gather(*(submit() for _ in range(tasks)))
    return sum(len(b.edges) for b in batches) / (time.perf_counter() - started)


async def _store_rates(tmp_dir: Path, rows: list[_Row], size: int) -> tuple[float, ...]:
    rates: list[float] = []
    for name, tasks, rounds in (("sequential", 1, 2), ("concurrent", 4, 1)):
        store = SqliteStore(tmp_dir / f"store-{name}.sqlite3")
        await store.start()
        try:
            for round_ in range(rounds):
                rates.append(await _store_rate(store, _batches(rows, size, round_), tasks))
        finally:
            await store.close()
    return tuple(rates)


def _baseline_rate(path: Path, rows: list[_Row], size: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        "CREATE TABLE associations (id TEXT PRIMARY KEY, entity_id TEXT, related_id TEXT,"
        " entity_type TEXT, related_type TEXT, association_types TEXT, file_action INTEGER,"
        " created_at REAL, last_seen REAL, submissions INTEGER, created_by TEXT);"
        "CREATE INDEX associations_entity ON associations (entity_id);"
        "CREATE INDEX associations_related ON associations (related_id);"
    )
    sql = (
        "INSERT INTO associations VALUES (?, ?, ?, 'url', 'domain', '[\"URL Host\"]', 0, ?, ?,"
        " 1, 'bench') ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen,"
        " submissions = submissions + 1"
    )
    started = time.perf_counter()
    for start in range(0, len(rows), size):
        now = time.time()
        conn.execute("BEGIN")
        conn.executemany(sql, [(a, e, r, now, now) for a, e, r in rows[start : start + size]])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def run(tmp_dir: Path, rows: int = 200_000, batch: int = 1000) -> dict[str, float]:
    """One measurement in ``tmp_dir`` (created if absent; fresh files): rates in rows/s."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    data = _rows(rows, seed=rows)
    new_rate, duplicate_rate, concurrent_rate = asyncio.run(_store_rates(tmp_dir, data, batch))
    baseline = _baseline_rate(tmp_dir / "baseline.sqlite3", data, batch)
    return {
        "store_new_rows_per_s": new_rate,
        "store_duplicate_rows_per_s": duplicate_rate,
        "store_new_rows_per_s_4_tasks": concurrent_rate,
        "baseline_rows_per_s": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
            results.append(run(Path(tmp), args.rows, args.batch))
    print(f"rows={args.rows} batch={args.batch} repeat={args.repeat} (median)")
    for name in results[0]:
        median = statistics.median(result[name] for result in results)
        print(f"{name:30s} {median:12,.0f}")


if __name__ == "__main__":
    main()
