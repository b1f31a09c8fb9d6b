"""Publisher throughput through the real broker: one publish per item vs the coalescing publisher.

``N`` concurrent tasks (standing for concurrent HTTP requests) each publish one item at a time
and wait for its confirm, for ``seconds``:

- ``plain``: each item is its own message (``JobQueue.publish``);
- ``coalesced``: the same tasks go through ``CoalescingPublisher``, which packs the items that
  arrive while a message awaits its confirm into the next message.

Figures are messages and items confirmed per second; ``ratio`` is coalesced items/s over plain
items/s. Run ``python -m bench.publisher_bench`` for the median of 5 runs, including the
comparison of ``max_in_flight`` 1, 2 and 4.

Measured here (2 cores shared with the broker and other work; median of 5 runs of 3 s, 64 tasks):
plain 1,680 messages/s = 1,680 items/s; coalesced with max_in_flight 1: 441 messages/s carrying
14,109 items/s (ratio 8.0); max_in_flight 2: 10,143 items/s (5.1); 4: 7,852 items/s (4.5).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

from ingest_api.publisher import DEFAULT_MAX_IN_FLIGHT, CoalescingPublisher
from schemas.jobids import new_job_id
from schemas.messages import AssociationItem, MessageKind, encode_envelope, encode_item
from workers.queue.base import Topology
from workers.queue.rabbit import RabbitJobQueue

KIND = MessageKind.ASSOCIATION


def _item(n: int) -> bytes:
    return encode_item(
        AssociationItem(
            job=new_job_id(),
            index=0,
            total=1,
            user="bench",
            groups=("analysts",),
            submitted_at=time.time(),
            entity_id="asn-" + f"{n:064x}"[-64:],
            related_id="ip-" + f"{n * 7919:064x}"[-64:],
        )
    )


async def _phase(
    amqp_url: str, seconds: float, tasks: int, max_in_flight: int | None
) -> tuple[float, float]:
    """(messages/s, items/s) confirmed; ``max_in_flight`` None means one publish per item."""
    queue = RabbitJobQueue(amqp_url, Topology(base=f"bench-pub-{uuid.uuid4().hex[:8]}"))
    await queue.start()
    publisher = (
        None
        if max_in_flight is None
        else CoalescingPublisher(
            queue, max_items=10_000, max_bytes=8 << 20, timeout=5.0, max_in_flight=max_in_flight
        )
    )
    items = 0
    # Encoded beforehand: the figures are the publisher's, not pydantic's.
    pool = [_item(n) for n in range(4096)]

    async def submitter(worker: int) -> None:
        nonlocal items
        n = worker
        while time.perf_counter() < deadline:
            encoded = pool[n % len(pool)]
            if publisher is None:
                await queue.publish(encode_envelope(KIND, [encoded]), message_id=new_job_id())
            else:
                await publisher.publish(KIND, [encoded])
            items += 1
            n += tasks

    try:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(submitter(w) for w in range(tasks)))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.2)  # let the broker's queue counter catch up
        messages = await queue.depth()
    finally:
        await queue.delete_topology()
        await queue.close()
    return messages / elapsed, items / elapsed


def run(
    amqp_url: str,
    seconds: float = 3.0,
    *,
    tasks: int = 64,
    in_flight: Sequence[int] = (DEFAULT_MAX_IN_FLIGHT,),
) -> dict[str, float]:
    """Plain and coalesced publish rates (messages/s, items/s) and their ratio."""

    async def measure() -> dict[str, float]:
        result: dict[str, float] = {}
        plain_messages, plain_items = await _phase(amqp_url, seconds, tasks, None)
        result["plain_messages_per_s"] = plain_messages
        result["plain_items_per_s"] = plain_items
        for limit in in_flight:
            suffix = "" if len(in_flight) == 1 else f"_inflight_{limit}"
            messages, items = await _phase(amqp_url, seconds, tasks, limit)
            result[f"coalesced{suffix}_messages_per_s"] = messages
            result[f"coalesced{suffix}_items_per_s"] = items
            result[f"ratio{suffix}"] = items / plain_items if plain_items else float("nan")
        return result

    return asyncio.run(measure())


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/"
    runs = [run(url, seconds=3.0, in_flight=(1, 2, 4)) for _ in range(5)]
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"{key:40s} median {statistics.median(values):10.1f}   runs {values}")
