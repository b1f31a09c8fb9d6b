"""Real backends with one fault injected, for tests of what clients and the front do about it."""

from __future__ import annotations

from typing import Any

from workers.ground.errors import BrokerUnavailable
from workers.queue.memory import MemoryJobQueue


class ConfirmLostQueue(MemoryJobQueue):
    """The in-process queue, whose broker takes the next ``lost`` messages but whose confirms
    never arrive: the publisher gets ``BrokerUnavailable``, as after a confirm timeout or a
    connection lost just after the publish. ``lose_at`` loses the confirm of the messages of
    those positions (0-based, counted over every publish) instead."""

    lost = 0
    lose_at: frozenset[int] = frozenset()
    published = 0

    async def publish(self, body: bytes, **kwargs: Any) -> None:
        await super().publish(body, **kwargs)
        position, self.published = self.published, self.published + 1
        if self.lost > 0 or position in self.lose_at:
            self.lost = max(0, self.lost - 1)
            raise BrokerUnavailable("the confirm was lost (test)")
