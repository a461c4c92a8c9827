"""Access-token verification against a JWKS, and service tokens for calls between services."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import jwt

from meshkit.context import Principal, Role
from meshkit.errors import Unavailable
from meshkit.expiring import ExpiringCache
from meshkit.identity.errors import TokenExpired, TokenInvalid
from meshkit.identity.revocations import RevokedTokens

logger = logging.getLogger(__name__)

# Asymmetric algorithms only: `none` and HS* (which would accept a public key as a secret)
# never verify, whatever a token's header claims.
ALLOWED_ALGORITHMS = frozenset({"RS256", "EdDSA"})
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")

JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


# Tokens already verified, until they expire. A request crosses the gateway and one or more
# services, each verifying the same token; after the first check the others cost a lookup.
VerifiedTokenCache = ExpiringCache[str, Principal]


def principal_from_claims(token: str, claims: Mapping[str, Any]) -> Principal:
    try:
        role = Role(claims.get("role", ""))
    except ValueError:
        raise TokenInvalid("The token carries no valid role.") from None
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        token=token,
        token_id=str(claims["jti"]),
        issued_at=float(claims["iat"]),
    )


class JwksVerifier:
    """Verifies RS256/EdDSA access tokens with keys from a JWKS, refetched on an unknown `kid`,
    and refuses those `revoked` names (`meshkit.identity.revocations`)."""

    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float = 0,
        refresh_interval_seconds: float = 300,
        min_refetch_interval_seconds: float = 5,
        revoked: RevokedTokens | None = None,
    ) -> None:
        self._fetch = fetch_jwks
        self.revoked = revoked if revoked is not None else RevokedTokens()
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self.refresh_interval = refresh_interval_seconds
        self.min_refetch_interval = min_refetch_interval_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self._cache = VerifiedTokenCache()

    def load_jwks(self, jwks: Mapping[str, Any]) -> None:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in jwks.get("keys", ()):
            if entry.get("alg") not in ALLOWED_ALGORITHMS or not entry.get("kid"):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(dict(entry))
            except jwt.PyJWTError:
                logger.warning("ignoring unusable key %s in the JWKS", entry.get("kid"))
        self._keys = keys
        self._jwks = {"keys": [dict(entry) for entry in jwks.get("keys", ())]}
        self._fetched_at = time.monotonic()

    async def public_jwks(self) -> dict[str, Any]:
        """The JWKS as last fetched, refreshed when older than the refresh interval."""
        if time.monotonic() - self._fetched_at >= self.refresh_interval:
            await self._refresh(force=False)
        return self._jwks

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            # Someone may have refreshed while we waited; an unknown kid must not let a
            # client make us refetch on every request.
            if age < self.min_refetch_interval or (not force and age < self.refresh_interval):
                return
            try:
                self.load_jwks(await self._fetch())
            except Exception as exc:
                if not self._keys:
                    # Not the caller's fault: their token may be fine; we cannot tell yet.
                    logger.warning("cannot fetch the JWKS: %r", exc)
                    raise Unavailable(
                        "Tokens cannot be checked right now: the user service is unavailable."
                    ) from exc
                logger.warning("JWKS refresh failed; keeping the keys we have", exc_info=True)
                self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        if time.monotonic() - self._fetched_at >= self.refresh_interval:
            await self._refresh(force=False)
        key = self._keys.get(kid)
        if key is None:
            await self._refresh(force=True)
            key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid("The token was signed by an unknown key.")
        return key

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            return self.revoked.check(cached)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("The token is malformed.") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise TokenInvalid("The token's algorithm is not accepted.")
        key = await self._key_for(str(header.get("kid", "")))
        if key.algorithm_name != algorithm:
            raise TokenInvalid("The token's algorithm does not match its key.")
        claims = decode_claims(
            token, key, issuer=self.issuer, audience=self.audience, leeway=self.leeway
        )
        principal = principal_from_claims(token, claims)
        self._cache.put(token, principal, float(claims["exp"]))
        return self.revoked.check(principal)


def decode_claims(
    token: str, key: jwt.PyJWK | Any, *, issuer: str, audience: str, leeway: float = 0
) -> dict[str, Any]:
    """Verify signature, exp, nbf, iss and aud; every failure is Unauthenticated."""
    algorithm = key.algorithm_name if isinstance(key, jwt.PyJWK) else None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key if isinstance(key, jwt.PyJWK) else key,
            algorithms=[algorithm] if algorithm else sorted(ALLOWED_ALGORITHMS),
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("The token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise TokenInvalid("The token is not valid yet.") from None
    except jwt.InvalidAudienceError:
        raise TokenInvalid("The token is meant for another audience.") from None
    except jwt.InvalidIssuerError:
        raise TokenInvalid("The token comes from an unknown issuer.") from None
    except jwt.PyJWTError:
        raise TokenInvalid("The token is not valid.") from None
    return claims


ServiceTokenIssuer = Callable[[], Awaitable[tuple[str, float]]]


class ServiceTokenSource:
    """A service's own access token, fetched by client credentials and renewed before expiry."""

    def __init__(self, issue: ServiceTokenIssuer, *, renew_margin_seconds: float = 60) -> None:
        self._issue = issue
        self.renew_margin = renew_margin_seconds
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str | None:
        if self._token is not None and time.monotonic() < self._expires_at - self.renew_margin:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - self.renew_margin:
                token, lifetime = await self._issue()
                self._token, self._expires_at = token, time.monotonic() + lifetime
        return self._token


def jwks_from_keys(keys: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"keys": [dict(key) for key in keys]}
