"""Time-ordered job IDs (UUIDv7, RFC 9562).

Job records are keyed by these IDs; because the first 48 bits are a millisecond timestamp, new
jobs append at the end of the store's index instead of landing at random places in it.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

# Job IDs are not secrets (GET /jobs checks the owner), so their random bits come from a
# seeded PRNG: os.urandom is a system call, several microseconds on a virtual machine, and this
# runs once per request. A forked child inherits the PRNG's state, so every child reseeds it
# (pre-fork servers, `api --processes N`): two processes must never draw the same bits, or
# their jobs' items would be skipped as already recorded.
_random = random.Random(os.urandom(32))
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _reseed_after_fork() -> None:
    global _lock, _last_ms, _counter
    _random.seed(os.urandom(32))
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    _last_ms = 0
    _counter = 0


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_job_id() -> str:
    """A new UUIDv7 as a lowercase hyphenated string; strictly increasing within a process."""
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            # Same (or earlier) millisecond: keep order with the 12-bit counter in rand_a,
            # borrowing the next millisecond when it runs out.
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _counter = _random.getrandbits(10)
        counter = _counter
        rand_b = _random.getrandbits(62) | (0b10 << 62)
    # Formatted by hand: uuid.UUID's constructor and __str__ cost more than the rest together.
    now_ms &= 0xFFFFFFFFFFFF
    return (
        f"{now_ms >> 16:08x}-{now_ms & 0xFFFF:04x}-7{counter & 0xFFF:03x}"
        f"-{rand_b >> 48:04x}-{rand_b & 0xFFFFFFFFFFFF:012x}"
    )


def job_id_timestamp(job_id: str) -> float:
    """The creation time (seconds since the epoch) encoded in a UUIDv7 job ID."""
    return (uuid.UUID(job_id).int >> 80) / 1000.0
