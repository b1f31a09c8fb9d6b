"""The queue depth gauge follows the work queue."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ingest_api.queue_depth import QueueDepthSampler
from schemas.messages import MessageKind, encode_envelope
from tests.backends import MemoryQueueFactory


def gauge() -> float | None:
    return REGISTRY.get_sample_value("ingest_queue_depth_messages")


async def test_the_gauge_shows_the_messages_waiting_in_the_work_queue(
    memory_queue: MemoryQueueFactory,
) -> None:
    queue = await memory_queue()
    sampler = QueueDepthSampler(queue)
    for n in range(3):
        await queue.publish(encode_envelope(MessageKind.ASSOCIATION, []), message_id=str(n))

    await sampler.sample()
    waiting = gauge()
    await queue.close()
    await sampler.sample()  # a closed queue cannot answer: the last value stays

    assert waiting == 3
    assert gauge() == 3
