"""Access tokens (signed JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from meshkit.context import Principal
from meshkit.identity import TokenInvalid, VerifiedTokenCache, decode_claims, principal_from_claims
from meshkit.identity.revocations import RevokedTokens
from user_service.keys import ALGORITHM, KeyRing


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


class AccessTokens:
    """Signs access tokens with the active key; verifies with any key of the ring."""

    def __init__(
        self,
        keys: KeyRing,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        revoked: RevokedTokens | None = None,
    ) -> None:
        self.keys = keys
        self.revoked = revoked if revoked is not None else RevokedTokens()
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl_seconds
        # The same token comes back on every call a request makes here (the order service's
        # IsUserActive, the notification service's GetUser): verified once, looked up after.
        self._verified = VerifiedTokenCache()

    def issue(self, subject: str, role: str, *, ttl_seconds: int | None = None) -> IssuedToken:
        issued = time.time()
        now = int(issued)
        ttl = ttl_seconds or self.ttl
        claims: dict[str, Any] = {
            "sub": subject,
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            # To the millisecond (JWT allows fractions): a revocation voids the tokens issued
            # before it, and a sign-in in the same second after it must not be one of them.
            "iat": math.floor(issued * 1000) / 1000,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        key = self.keys.active
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return IssuedToken(token=token, expires_in=ttl)

    async def verify(self, token: str) -> Principal:
        """The user service's own check: same rules as everywhere, keys held locally."""
        cached = self._verified.get(token)
        if cached is not None:
            return self.revoked.check(cached)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenInvalid("The token is malformed.") from None
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid("The token's algorithm is not accepted.")
        key = self.keys.keys.get(str(header.get("kid", "")))
        if key is None:
            raise TokenInvalid("The token was signed by an unknown key.")
        claims = decode_claims(token, key.public_key, issuer=self.issuer, audience=self.audience)
        principal = principal_from_claims(token, claims)
        self._verified.put(token, principal, float(claims["exp"]))
        return self.revoked.check(principal)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # The token has 256 bits of entropy: a fast hash is enough, no salt or stretching needed.
    return hashlib.sha256(token.encode()).hexdigest()
