"""Who the caller is: access tokens verified against the user service's JWKS, service
tokens for calls between services, and the checks a domain method makes on the caller."""

from __future__ import annotations

from meshkit.identity.access import (
    USERS,
    authorize,
    require_principal,
    require_role,
    require_user,
)
from meshkit.identity.auth import (
    JwksVerifier,
    ServiceTokenIssuer,
    ServiceTokenSource,
    VerifiedTokenCache,
    decode_claims,
    jwks_from_keys,
    principal_from_claims,
)
from meshkit.identity.errors import (
    AccountChanged,
    AccountDeactivated,
    RoleNotAllowed,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
)
from meshkit.identity.wiring import (
    UserServiceLink,
    confirm_account,
    find_user,
    jwks_verifier,
    link_user_service,
    service_token_source,
)

__all__ = [
    "USERS",
    "AccountChanged",
    "AccountDeactivated",
    "JwksVerifier",
    "RoleNotAllowed",
    "ServiceTokenIssuer",
    "ServiceTokenSource",
    "TokenExpired",
    "TokenInvalid",
    "TokenMissing",
    "TokenRevoked",
    "UserServiceLink",
    "VerifiedTokenCache",
    "authorize",
    "confirm_account",
    "decode_claims",
    "find_user",
    "jwks_from_keys",
    "jwks_verifier",
    "link_user_service",
    "principal_from_claims",
    "require_principal",
    "require_role",
    "require_user",
    "service_token_source",
]
