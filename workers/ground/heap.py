"""The garbage collector's settings of a long-running process (the front, a worker, ``dev``).

Each of them allocates and drops several containers per request or item (a bulk body parsed
by orjson is a dict per item), so Python's default of a young collection every 700
allocations runs many collections a request, and each collection of an older generation walks
every live object: modules, models and schemas included. Reference counting frees these
containers; the collector is only needed for the rare cycle.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["GC_YOUNG_THRESHOLD", "settle_heap"]

GC_YOUNG_THRESHOLD: Final = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700)."""


def settle_heap() -> None:
    """Once a process has made what lives as long as it (modules, models, schemas, its
    application): the collector stops walking those objects (``gc.freeze``), and the young
    generation is collected every ``GC_YOUNG_THRESHOLD`` allocations instead of every 700."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
