"""End to end: a workload made from the real feeds, submitted in bulk through the front and
RabbitMQ to N worker processes on the embedded store (or on MongoDB: ``mongodb_url``, a
database of the run's own, dropped afterwards), timed until every job is ``done``. Every
process at the shipped defaults (durable commits of the embedded store included).

Workloads:
- ``feeds``: every importer on the files in ``shared/data/feeds`` (entities first, then
  associations), as a user would import them: about 6,400 associations, too few to time;
- ``feeds_replayed``: the same replayed under distinct values (``bench.feeds_replay``) until
  it holds at least ``associations`` associations (200,000 by default);
- ``enrichment``: the ip2asn table joined to generated addresses inside each of its CIDRs
  (CIDR to Address and ASN to Address for each address), scaled to measure throughput. The
  addresses are only strings: nothing is resolved or contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from assoc_ingest.importers import import_feed
from bench import feeds_replay
from bench.chaos_store import drop_mongo_database
from bench.common import (
    CLI,
    FEEDS,
    PeakRss,
    create_key,
    delete_topology,
    free_port,
    pipeline_env,
    process,
    unique,
)
from schemas import entity_id

FEED_FILES = {
    "threatfox": "threatfox.json",
    "feodo": "feodo.json",
    "ipblocklist": "ipblocklist.csv",
    "misp": "misp-moustachedbouncer.event.json",
    "cape": "0000a65749f5902c4d82ffa701198038f0b4870b00a27cfca109f8f933476d82.json.gz",
    "ip2asn": "ip2asn-v4.tsv",
}
Workload = feeds_replay.Workload


def feeds_workload() -> Workload:
    entities: dict[str, dict[str, Any]] = {}
    associations: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, file in FEED_FILES.items():
        table = None if name == "ip2asn" else FEEDS / FEED_FILES["ip2asn"]
        result = import_feed(name, FEEDS / file, asn_table=table)
        for body in result.entities:
            entities[entity_id(body["type"], str(body["attributes"][body["type"]]))] = body
        for assoc in result.associations:
            key = (assoc["entityID"], assoc["relatedEntityID"], assoc["associationType"])
            associations[key] = assoc
    return list(entities.values()), list(associations.values())


def feeds_replayed_workload(associations: int = 200_000) -> Workload:
    """The feeds replayed under distinct values until at least ``associations``."""
    base = feeds_workload()
    return feeds_replay.replay(base, feeds_replay.replays_for(base, associations))


def enrichment_workload(per_cidr: int) -> Workload:
    """ASN/CIDR entities from ip2asn plus ``per_cidr`` addresses inside each CIDR."""
    base = import_feed("ip2asn", FEEDS / FEED_FILES["ip2asn"])
    entities = list(base.entities)
    associations: list[dict[str, Any]] = []
    cidrs = {
        entity_id("cidr", body["attributes"]["cidr"]): body["attributes"]["cidr"]
        for body in base.entities
        if body["type"] == "cidr"
    }
    for link in base.associations:  # ASN to CIDR
        asn_id, cidr_id = link["entityID"], link["relatedEntityID"]
        network = ipaddress.ip_network(cidrs[cidr_id])
        for address in itertools.islice(network.hosts(), per_cidr):
            ip_id = entity_id("ip", str(address))
            entities.append({"type": "ip", "attributes": {"ip": str(address)}})
            associations.append(
                {
                    "entityID": cidr_id,
                    "relatedEntityID": ip_id,
                    "associationType": "CIDR to Address",
                }
            )
            associations.append(
                {"entityID": asn_id, "relatedEntityID": ip_id, "associationType": "ASN to Address"}
            )
    return entities, associations


def chunks(items: list[dict[str, Any]], size: int) -> list[bytes]:
    return [orjson.dumps(items[i : i + size]) for i in range(0, len(items), size)]


async def submit(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int = 4
) -> list[str]:
    """POST every body, ``concurrency`` at a time (retrying 503s); return the job IDs. Answers
    are read with orjson: a STIX 202 lists every object not represented, which the stdlib
    parser would make this client, on the same machine, the slowest party."""
    jobs: list[str] = []
    pending = iter(bodies)

    async def sender() -> None:
        for body in pending:
            while True:
                async with session.post(url, data=body) as response:
                    if response.status == 503:
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    data = orjson.loads(await response.read())
                    if response.status != 202:
                        raise RuntimeError(f"{url} answered {response.status}: {data}")
                    jobs.append(data["jobID"])
                    break

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return jobs


async def wait_done(
    session: aiohttp.ClientSession, base: str, jobs: list[str], timeout: float
) -> dict[str, int]:
    """Poll the jobs in the order they were submitted until none is queued or processing;
    return the summed outcome counts. Jobs finish about in that order, so each look asks for
    the oldest unfinished job and the ones after it until one is still unfinished (a few
    requests a look, however many jobs), then waits 20 ms."""
    deadline = time.monotonic() + timeout
    remaining = list(jobs)
    totals: dict[str, int] = {}
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(remaining)} jobs not done after {timeout} s")
        while remaining:
            async with session.get(f"{base}/jobs/{remaining[0]}") as response:
                data = await response.json()
            if data.get("status") not in ("done", "failed"):
                break
            remaining.pop(0)
            for outcome, count in data["counts"].items():
                totals[outcome] = totals.get(outcome, 0) + count
        if remaining:
            await asyncio.sleep(0.02)
    return totals


async def drive(base: str, headers: dict[str, str], workload: Workload) -> dict[str, Any]:
    """Entities first (in bulks of 1,000, until every one is stored), then the associations;
    the clock runs from the first submission to the last association stored."""
    entities, associations = workload
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        start = time.perf_counter()
        entity_jobs = await submit(session, f"{base}/entities", chunks(entities, 1000))
        entity_counts = await wait_done(session, base, entity_jobs, 600)
        entities_done = time.perf_counter()
        assoc_jobs = await submit(session, f"{base}/associations", chunks(associations, 1000))
        acked = time.perf_counter()
        assoc_counts = await wait_done(session, base, assoc_jobs, 600)
        done = time.perf_counter()
    return {
        "entities": len(entities),
        "associations": len(associations),
        "total_seconds": done - start,
        "entity_seconds": entities_done - start,
        "association_seconds": done - entities_done,
        "association_ack_seconds": acked - entities_done,
        "associations_per_s": len(associations) / (done - entities_done),
        "items_per_s": (len(entities) + len(associations)) / (done - start),
        "entity_outcomes": entity_counts,
        "association_outcomes": assoc_counts,
    }


def run_e2e(workload: Workload, workers: int, mongodb_url: str | None = None) -> dict[str, Any]:
    port = free_port()
    topology = unique("bench-e2e")
    database = topology.replace("-", "_")
    on_mongo: dict[str, str] = {}
    if mongodb_url:
        on_mongo = {"MONGODB_URL": mongodb_url, "INGEST_MONGODB_DATABASE": database}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        env = pipeline_env(topology, Path(tmp), INGEST_PORT=str(port), **on_mongo)
        key, secret = create_key(env)
        headers = {"api-key": key, "api-secret": secret, "Content-Type": "application/json"}
        try:
            with (
                process([*CLI, "api"], env=env, port=port) as front,
                PeakRss() as rss,
                contextlib.ExitStack() as workers_running,
            ):
                rss.watch("front", front.pid)
                for _ in range(workers):
                    worker = workers_running.enter_context(process([*CLI, "worker"], env=env))
                    rss.watch("worker", worker.pid)
                result = asyncio.run(
                    drive(f"http://127.0.0.1:{port}/api/ingest/v1", headers, workload)
                )
        finally:
            delete_topology(topology)
            if mongodb_url:
                drop_mongo_database(mongodb_url, database)
    return {**result, "workers": workers, "peak_rss_mb": dict(rss.peaks)}
