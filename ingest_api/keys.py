"""API keys: creation, secret digests and constant-time verification.

An API key is a pair: a public key ID (``ak_...``, sent as the ``api-key`` header) and a secret
(sent as ``api-secret``). The secret is shown once, when the key is created, and the store keeps
only its digest; ``secret_matches`` compares a presented secret with that digest in constant
time. Roles are those of SPEC §3.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from workers.store.records import ApiKeyRecord

__all__ = ["KEY_ID_PREFIX", "ROLES", "digest_secret", "new_api_key", "secret_matches"]

ROLES = ("admin", "user", "reporter", "trusted")
KEY_ID_PREFIX = "ak_"
_DAY = 86_400.0


def digest_secret(secret: str) -> str:
    """The digest stored in place of ``secret``: SHA-256 of its UTF-8 bytes, lowercase hex.

    A plain fast hash is enough here, unlike for passwords: our secrets are 32 random bytes
    (256 bits) from ``secrets``, so there is no dictionary to try and brute force over the
    secret space is out of reach whatever the hash speed; a slow KDF would only slow every
    authenticated request.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(record: ApiKeyRecord, secret: str) -> bool:
    """Whether ``secret`` is the secret of ``record``, compared in constant time.

    Only the secret is checked: revocation and expiry are the caller's decision.
    """
    return hmac.compare_digest(digest_secret(secret), record.secret_digest)


def new_api_key(
    user_id: str,
    roles: Sequence[str],
    groups: Sequence[str],
    days: int | None,
    now: float,
) -> tuple[ApiKeyRecord, str]:
    """A new key for ``user_id`` and its secret, which is returned here and nowhere else.

    The key expires ``days`` days after ``now`` (never when ``days`` is None). Roles and groups
    keep their first-seen order without repeats. Raises ``ValueError`` on an empty user ID, no
    role, a role not in ``ROLES``, or ``days`` below 1.
    """
    if not user_id.strip():
        raise ValueError("an API key needs a user ID")
    unknown = sorted({role for role in roles if role not in ROLES})
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if not roles:
        raise ValueError(f"an API key needs at least one role of {', '.join(ROLES)}")
    if days is not None and days < 1:
        raise ValueError("an API key must be valid for at least one day")
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_id=KEY_ID_PREFIX + secrets.token_urlsafe(16),
        secret_digest=digest_secret(secret),
        user_id=user_id,
        roles=tuple(dict.fromkeys(roles)),
        groups=tuple(dict.fromkeys(groups)),
        created_at=now,
        expires_at=None if days is None else now + days * _DAY,
    )
    return record, secret
