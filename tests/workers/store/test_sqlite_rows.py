"""``insert_rows`` writes what ``executemany`` writes, in the same order, conflicts included."""

from __future__ import annotations

import sqlite3

import pytest

from workers.store.sqlite.rows import insert_rows

HEAD = "INSERT INTO t (k, v)"
UPSERT = " ON CONFLICT (k) DO UPDATE SET v = excluded.v WHERE t.v = 'failed'"


def _table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, k INTEGER UNIQUE, v TEXT)")
    return conn


@pytest.mark.parametrize("count", [0, 1, 3, 4, 17, 255, 256, 257, 1000, 1342])
def test_rows_are_inserted_in_order_as_executemany_does(count: int) -> None:
    rows = [(n * 7919 % 100_003, f"v{n}") for n in range(count)]
    expected, actual = _table(), _table()
    expected.executemany(f"{HEAD} VALUES (?, ?)", rows)
    insert_rows(actual, HEAD, rows)
    query = "SELECT seq, k, v FROM t ORDER BY seq"
    assert actual.execute(query).fetchall() == expected.execute(query).fetchall()


def test_a_conflict_clause_applies_to_each_row_in_turn() -> None:
    rows = [(1, "failed"), (2, "stored"), (1, "stored"), (1, "duplicate"), (2, "again")] * 60
    expected, actual = _table(), _table()
    expected.executemany(f"{HEAD} VALUES (?, ?){UPSERT}", rows)
    insert_rows(actual, HEAD, rows, UPSERT)
    query = "SELECT seq, k, v FROM t ORDER BY seq"
    assert actual.execute(query).fetchall() == expected.execute(query).fetchall()
    assert dict(actual.execute("SELECT k, v FROM t").fetchall()) == {1: "stored", 2: "stored"}
