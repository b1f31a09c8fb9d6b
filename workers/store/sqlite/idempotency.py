"""Idempotency keys in the embedded store, reserved in group commits.

A front reserves a key before it publishes (``Store.reserve_idempotency_key``), so the
reservation is on every keyed request's path. Reservations that arrive while one transaction
runs go together into the next one (one write lock, one commit) in arrival order, so the same
key twice in one group is reserved by the first and found by the second. Each transaction also
removes a few expired keys, so the table stays as large as one window's keys.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence

from workers.store.logic import key_expires_at, reservation_holds
from workers.store.records import KeyReservation, ReservedKey

__all__ = ["GROUP_MAX_KEYS", "PURGE_LIMIT", "KeyReserver", "reserve_keys"]

GROUP_MAX_KEYS = 1000
"""Reservations one transaction carries at most."""

PURGE_LIMIT = 64
"""Expired keys one reservation transaction removes at most: more than it adds under load."""

Request = tuple[KeyReservation, float]
"""A reservation and the window (seconds) in which an earlier one of its key holds."""


def reserve_keys(conn: sqlite3.Connection, requests: Sequence[Request]) -> list[ReservedKey]:
    """Reserve each key in order inside the caller's write transaction (see the module
    docstring); the result of each request, in order."""
    results: list[ReservedKey] = []
    latest = 0.0
    for reservation, window in requests:
        latest = max(latest, reservation.created_at)
        row = conn.execute(
            "SELECT digest, job_id, created_at FROM idempotency_keys WHERE user_id = ? AND key = ?",
            (reservation.user, reservation.key),
        ).fetchone()
        if row is not None and reservation_holds(row[2], reservation.created_at, window):
            digest, job_id, created_at = row
            known = conn.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            held = KeyReservation(reservation.user, reservation.key, digest, job_id, created_at)
            results.append(ReservedKey(held, new=False, job_known=known is not None))
            continue
        conn.execute(
            "INSERT OR REPLACE INTO idempotency_keys"
            " (user_id, key, digest, job_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                reservation.user,
                reservation.key,
                reservation.digest,
                reservation.job_id,
                reservation.created_at,
                key_expires_at(reservation.created_at, window),
            ),
        )
        results.append(ReservedKey(reservation, new=True, job_known=False))
    conn.execute(
        "DELETE FROM idempotency_keys WHERE (user_id, key) IN (SELECT user_id, key"
        " FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)",
        (latest, PURGE_LIMIT),
    )
    return results


WriteKeys = Callable[[list[Request]], Awaitable[list[ReservedKey]]]


class KeyReserver:
    """Group commit of reservations: ``write`` runs ``reserve_keys`` in one write transaction."""

    def __init__(self, write: WriteKeys) -> None:
        self._write = write
        self._pending: list[tuple[Request, asyncio.Future[ReservedKey]]] = []
        self._task: asyncio.Task[None] | None = None

    async def reserve(self, reservation: KeyReservation, window: float) -> ReservedKey:
        """The result of reserving ``reservation`` (``Store.reserve_idempotency_key``), once the
        transaction that carries it is committed."""
        future: asyncio.Future[ReservedKey] = asyncio.get_running_loop().create_future()
        self._pending.append(((reservation, window), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait for the reservations already asked for."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _drain(self) -> None:
        while self._pending:
            group = self._pending[:GROUP_MAX_KEYS]
            del self._pending[:GROUP_MAX_KEYS]
            try:
                results = await self._write([request for request, _ in group])
            except BaseException as exc:  # the transaction failed: every caller in it sees it
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
