"""Inserting many rows with few statement steps.

``sqlite3``'s ``executemany`` steps its statement once per row, and each step gives up the GIL
and takes it back: while the worker's event loop is busy deciding the next message, taking it
back waits for the loop to let go (up to ``sys.getswitchinterval()``), all the while holding the
store's write lock. ``insert_rows`` writes the same rows, in the same order, with one
multi-row ``INSERT ... VALUES (...), (...)`` statement per chunk, so a batch of 1,000 rows
takes about ten steps. The chunk sizes are fixed so that the connection's statement cache
keeps every statement compiled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

CHUNK_ROWS = (256, 64, 16, 4, 1)
"""Rows one statement carries, largest first (256 rows of 16 columns stay far below SQLite's
32,766 parameters)."""


@lru_cache(maxsize=64)
def _statement(head: str, columns: int, rows: int, tail: str) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return f"{head} VALUES {', '.join([row] * rows)}{tail}"


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], tail: str = ""
) -> None:
    """``conn.executemany(f"{head} VALUES (?, ...){tail}", rows)`` in multi-row statements:
    the rows are inserted one after the other in their order (a conflict clause in ``tail``
    applies to each row as it would with ``executemany``). ``head`` is ``INSERT INTO table
    (columns)``; every row has one value per column."""
    if not rows:
        return
    columns = len(rows[0])
    start, count = 0, len(rows)
    for size in CHUNK_ROWS:
        while count - start >= size:
            chunk = rows[start : start + size]
            conn.execute(_statement(head, columns, size, tail), list(chain.from_iterable(chunk)))
            start += size
