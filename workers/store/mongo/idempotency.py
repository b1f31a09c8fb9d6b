"""Idempotency keys in the MongoDB store: collection ``idempotency_keys``.

``_id`` is ``{"user": ..., "key": ...}``, so the server's unique ``_id`` decides which of
several concurrent reservations of one key wins, on any number of fronts. A key's first use is
one insert; a repeated use reads the stored reservation (and whether its job is registered);
an expired one that the TTL monitor has not removed yet is replaced only if it is still the
one that was read, so two fronts replacing it at once agree on the winner.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from workers.ground.errors import StoreUnavailable
from workers.store.logic import key_expires_at, reservation_holds
from workers.store.records import KeyReservation, ReservedKey

__all__ = ["INDEXES", "reserve_key"]

INDEXES = [IndexModel([("expiresAt", ASCENDING)], expireAfterSeconds=0)]
"""Expired keys are removed by the TTL monitor."""

_ATTEMPTS = 4


def _fields(reservation: KeyReservation, window: float) -> dict[str, Any]:
    expires = key_expires_at(reservation.created_at, window)
    return {
        "digest": reservation.digest,
        "jobID": reservation.job_id,
        "createdAt": reservation.created_at,
        "expiresAt": dt.datetime.fromtimestamp(expires, tz=dt.UTC),
    }


async def reserve_key(db: Any, reservation: KeyReservation, window: float) -> ReservedKey:
    """``Store.reserve_idempotency_key`` on the database ``db``."""
    keys = db.idempotency_keys
    key_id = {"user": reservation.user, "key": reservation.key}
    fields = _fields(reservation, window)
    for _ in range(_ATTEMPTS):
        try:
            await keys.insert_one({"_id": key_id, **fields})
            return ReservedKey(reservation, new=True, job_known=False)
        except DuplicateKeyError:
            pass
        held = await keys.find_one({"_id": key_id})
        if held is None:
            continue  # expired and removed since the insert failed
        if reservation_holds(held["createdAt"], reservation.created_at, window):
            job_id = held["jobID"]
            known = await db.jobs.find_one({"_id": job_id}, {"_id": 1})
            original = KeyReservation(
                reservation.user, reservation.key, held["digest"], job_id, held["createdAt"]
            )
            return ReservedKey(original, new=False, job_known=known is not None)
        replaced = await keys.replace_one({"_id": key_id, "createdAt": held["createdAt"]}, fields)
        if replaced.modified_count:
            return ReservedKey(reservation, new=True, job_known=False)
    raise StoreUnavailable(f"the idempotency key changed {_ATTEMPTS} times while reserving it")
