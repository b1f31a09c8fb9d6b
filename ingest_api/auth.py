"""Who is calling, and may they: API keys, Bearer JWTs, or a trusted gateway's headers.

Credentials (SPEC §3):

- ``api-key`` + ``api-secret`` headers: the key record comes from ``Store.get_api_key``; the
  secret is compared in constant time with its stored digest; revoked and expired keys are
  refused. A verified (key, secret digest) pair is remembered in process for
  ``settings.api_key_cache_seconds``, so a hot key costs no store round trip (a revocation
  therefore takes effect within that many seconds; expiry is checked on every request).
- ``Authorization: Bearer <JWT>``: HS256 with ``settings.jwt_secret`` or RS256/ES256 with
  ``settings.jwt_public_key`` (the key is chosen by the token's algorithm, never a public key
  used as an HMAC secret); ``sub`` is the user, ``roles`` and ``groups`` claims (lists, or
  strings separated by commas or spaces); ``exp`` and ``sub`` are required; ``aud``/``iss`` are
  checked when configured.
- Both at once: 400 ``ambiguous_credentials``. None or wrong: 401 with ``WWW-Authenticate``.
- ``settings.trust_gateway_headers``: only the gateway's headers are used: ``user-id``
  (required) and ``groups`` (comma-separated). No request header grants a role: the caller
  holds ``settings.gateway_default_roles`` plus each role whose configured groups
  (``settings.gateway_<role>_groups``) share a group with the caller. The gateway must strip
  any ``user-id`` and ``groups`` a client sends (README, "Behind a gateway"). Otherwise
  client-sent ``user-id``/``groups``/``roles`` headers are ignored.

Roles: ``admin`` implies every role. ``require_role`` guards a view; ``authenticate`` names the
caller of a view open to every role.
"""

from __future__ import annotations

import functools
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ingest_api.errors import ApiError
from ingest_api.keys import ROLES, digest_secret, secret_matches
from workers.ground.errors import ConfigurationError, StoreUnavailable
from workers.ground.logs import note_user
from workers.ground.settings import Settings
from workers.store.base import Store
from workers.store.records import ApiKeyRecord, api_key_status

__all__ = [
    "Authenticator",
    "GatewayRoles",
    "Principal",
    "authenticate",
    "missing_role",
    "require_role",
]

_CHALLENGE = 'Bearer realm="assoc-ingest", api-key realm="assoc-ingest"'
_SPLIT = re.compile(r"[,\s]+")
_CACHE_MAX_ENTRIES = 10_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    user_id: str
    roles: frozenset[str]
    groups: tuple[str, ...]
    method: str  # "api-key", "jwt" or "gateway"
    key_id: str | None = None

    def has_role(self, role: str) -> bool:
        """Whether the caller holds ``role``; ``admin`` holds every role."""
        return role in self.roles or "admin" in self.roles


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": _CHALLENGE})


def _names(value: Any) -> tuple[str, ...]:
    """Roles or groups from a claim or header: a list of strings or one separated string."""
    if isinstance(value, str):
        items: Iterable[Any] = _SPLIT.split(value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        return ()
    return tuple(dict.fromkeys(s.strip() for s in items if isinstance(s, str) and s.strip()))


def _comma_list(value: str) -> tuple[str, ...]:
    """Group names separated by commas (a name may hold spaces), each once, in order."""
    return tuple(dict.fromkeys(g.strip() for g in value.split(",") if g.strip()))


@dataclass(frozen=True, slots=True)
class GatewayRoles:
    """The roles of a caller named by a trusted gateway, from configuration alone: ``default``
    for everyone, plus each role of ``by_group`` whose groups share one with the caller."""

    default: frozenset[str]
    by_group: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayRoles:
        """The deployment's mapping; ``ConfigurationError`` for a role that does not exist."""
        default = frozenset(_names(settings.gateway_default_roles))
        unknown = sorted(default - set(ROLES))
        if unknown:
            raise ConfigurationError(
                f"INGEST_GATEWAY_DEFAULT_ROLES names unknown role(s) {', '.join(unknown)}; "
                f"roles are {', '.join(ROLES)}"
            )
        by_group = tuple(
            (role, frozenset(_comma_list(getattr(settings, f"gateway_{role}_groups"))))
            for role in ROLES
        )
        return cls(default, tuple((role, groups) for role, groups in by_group if groups))

    def of(self, groups: Iterable[str]) -> frozenset[str]:
        member = set(groups)
        return self.default | {role for role, named in self.by_group if named & member}


@dataclass(slots=True)
class _Verified:
    record: ApiKeyRecord
    verified_at: float
    principal: Principal


def _active(record: ApiKeyRecord, principal: Principal, now: float) -> Principal:
    """``principal``, the caller of ``record``, unless the key is revoked or expired (401)."""
    status = api_key_status(record, now)
    if status == "revoked":
        raise _unauthorized("The API key has been revoked.")
    if status == "expired":
        raise _unauthorized("The API key has expired.")
    return principal


class Authenticator:
    """Turns a request's credentials into a ``Principal`` or raises ``ApiError`` (400/401/503)."""

    def __init__(
        self, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], _Verified] = OrderedDict()
        self._gateway_roles = GatewayRoles.from_settings(settings)
        self._keys: dict[str, Any] = {}
        if settings.jwt_secret is not None:
            self._keys["HS256"] = settings.jwt_secret.get_secret_value()
        if settings.jwt_public_key:
            try:
                public = load_pem_public_key(settings.jwt_public_key.encode())
            except ValueError as exc:
                raise ConfigurationError(f"jwt_public_key is not a PEM public key: {exc}") from exc
            if isinstance(public, rsa.RSAPublicKey):
                self._keys["RS256"] = public
            elif isinstance(public, ec.EllipticCurvePublicKey):
                self._keys["ES256"] = public
            else:
                raise ConfigurationError("jwt_public_key must be an RSA or EC public key")

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller who sent ``headers`` (see the module docstring for the rules)."""
        principal = self.authenticate_now(headers)
        if principal is None:
            principal = await self._look_up_key(
                headers.get("api-key", ""), headers.get("api-secret", "")
            )
        return principal

    def authenticate_now(self, headers: Mapping[str, str]) -> Principal | None:
        """``authenticate`` without waiting, from the request's ``headers`` (a case-insensitive
        mapping, or one of lower-case names), or None when the caller's API key must be
        looked up in the store (it was not verified in the last ``api_key_cache_seconds``)."""
        if self._settings.trust_gateway_headers:
            return self._from_gateway(headers)
        has_key = "api-key" in headers or "api-secret" in headers
        authorization = headers.get("authorization")
        if has_key and authorization is not None:
            raise ApiError(
                400,
                "ambiguous_credentials",
                "Send either api-key and api-secret or an Authorization header, not both.",
            )
        if has_key:
            return self._verified_key(headers.get("api-key", ""), headers.get("api-secret"))
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("The Authorization header must be 'Bearer <token>'.")
            return self._from_jwt(token.strip())
        raise _unauthorized("Credentials are required: api-key and api-secret, or a Bearer token.")

    # api keys -------------------------------------------------------------------------
    def _verified_key(self, key_id: str, secret: str | None) -> Principal | None:
        """The caller of a key verified in the last ``api_key_cache_seconds``, else None."""
        if not key_id or not secret:
            raise _unauthorized("Both api-key and api-secret headers are required.")
        hit = self._cache.get((key_id, digest_secret(secret)))
        if hit is None:
            return None
        now = self._clock()
        if now - hit.verified_at >= self._settings.api_key_cache_seconds:
            return None
        return _active(hit.record, hit.principal, now)

    async def _look_up_key(self, key_id: str, secret: str) -> Principal:
        now = self._clock()
        try:
            found = await self._store.get_api_key(key_id)
        except StoreUnavailable as exc:
            raise ApiError(
                503,
                "store_unavailable",
                "Credentials cannot be checked right now; retry shortly.",
                headers={"Retry-After": "5"},
            ) from exc
        if found is None or not secret_matches(found, secret):
            raise _unauthorized("The API key or secret is wrong.")
        principal = Principal(
            user_id=found.user_id,
            roles=frozenset(found.roles),
            groups=tuple(found.groups),
            method="api-key",
            key_id=found.key_id,
        )
        if self._settings.api_key_cache_seconds > 0:
            self._remember((key_id, digest_secret(secret)), _Verified(found, now, principal))
        return _active(found, principal, now)

    def _remember(self, cache_key: tuple[str, str], entry: _Verified) -> None:
        self._cache[cache_key] = entry
        self._cache.move_to_end(cache_key)
        while len(self._cache) > _CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)

    def forget_key(self, key_id: str) -> None:
        """Drop ``key_id`` from the verified-key cache, so a revocation made through this
        process takes effect on its next request."""
        for cache_key in [k for k in self._cache if k[0] == key_id]:
            del self._cache[cache_key]

    # JWT ------------------------------------------------------------------------------
    def _from_jwt(self, token: str) -> Principal:
        if not self._keys:
            raise _unauthorized("Bearer tokens are not accepted by this deployment.")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise _unauthorized("The Bearer token is not a valid JWT.") from exc
        key = self._keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None or not isinstance(algorithm, str):
            raise _unauthorized("The Bearer token is signed with an algorithm not accepted here.")
        audience = self._settings.jwt_audience
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["exp", "sub"], "verify_aud": audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("The Bearer token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"The Bearer token was refused: {exc}.") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _unauthorized("The Bearer token has no subject.")
        return Principal(
            user_id=subject,
            roles=frozenset(_names(claims.get("roles"))),
            groups=_names(claims.get("groups")),
            method="jwt",
        )

    # trusted gateway ------------------------------------------------------------------
    def _from_gateway(self, headers: Mapping[str, str]) -> Principal:
        user_id = headers.get("user-id", "").strip()
        if not user_id:
            raise _unauthorized("The gateway did not send a user-id header.")
        groups = _comma_list(headers.get("groups", ""))
        # Roles from configuration only: a roles header (or any other) is never read.
        roles = self._gateway_roles.of(groups)
        return Principal(user_id=user_id, roles=roles, groups=groups, method="gateway")


AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")


def _keep(request: web.Request, principal: Principal) -> None:
    note_user(principal.user_id)
    request[PRINCIPAL] = principal


def _caller_now(request: web.Request) -> Principal | None:
    """``authenticate`` when it needs no wait (see ``Authenticator.authenticate_now``)."""
    principal = request.app[AUTHENTICATOR].authenticate_now(request.headers)
    if principal is not None:
        _keep(request, principal)
    return principal


async def authenticate(request: web.Request) -> Principal:
    """The caller of ``request`` whatever their roles (401 without valid credentials), kept
    as ``request[PRINCIPAL]`` and named as ``user_id`` in the request's access line."""
    principal = _caller_now(request)
    if principal is None:
        principal = await request.app[AUTHENTICATOR].authenticate(request.headers)
        _keep(request, principal)
    return principal


def missing_role(role: str) -> ApiError:
    """The 403 of a caller without ``role``."""
    return ApiError(403, "forbidden", f"This operation needs the '{role}' role.")


def require_role(role: str) -> Callable[[Handler], Handler]:
    """Decorate a view so that it runs only for a caller holding ``role`` (401/403 otherwise).

    The caller is available to the view as ``request[PRINCIPAL]`` and named as ``user_id`` in
    the request's access line.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = _caller_now(request) or await authenticate(request)
            if not principal.has_role(role):
                raise missing_role(role)
            return await handler(request)

        return guarded

    return decorate
