"""The collector's settings every long-running process takes (``settle_heap``)."""

from __future__ import annotations

import subprocess
import sys

from workers.ground.heap import GC_YOUNG_THRESHOLD


def test_settle_heap_freezes_what_lives_and_collects_the_young_less_often() -> None:
    # In a process of its own: freezing this one would keep the suite's garbage for good.
    script = (
        "import gc\n"
        "from workers.ground.heap import settle_heap\n"
        "before = gc.get_threshold()\n"
        "settle_heap()\n"
        "after = gc.get_threshold()\n"
        "print(before[0], after[0], after[1:] == before[1:], gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["700", str(GC_YOUNG_THRESHOLD), "True", "True"]
