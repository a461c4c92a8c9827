"""Why a caller is refused: the identity errors every service raises alike."""

from __future__ import annotations

from meshkit.errors import PermissionDenied, Unauthenticated


class TokenMissing(Unauthenticated):
    """The call needs a bearer token and has none."""

    reason = "TOKEN_MISSING"


class TokenInvalid(Unauthenticated):
    """The token is malformed, signed by a key or algorithm we do not accept, or not ours."""

    reason = "TOKEN_INVALID"


class TokenExpired(Unauthenticated):
    """The token was valid and has expired: refresh it, or sign in again."""

    reason = "TOKEN_EXPIRED"


class TokenRevoked(Unauthenticated):
    """The token was issued before its account was deactivated, or its role or password
    changed (`meshkit.identity.revocations`): sign in again."""

    reason = "TOKEN_REVOKED"


class RoleNotAllowed(PermissionDenied):
    """The caller's role may not make this call."""

    reason = "ROLE_NOT_ALLOWED"


class AccountDeactivated(PermissionDenied):
    """The caller's account was deactivated after its token was issued."""

    reason = "ACCOUNT_DEACTIVATED"


class AccountChanged(PermissionDenied):
    """The caller's account was deactivated, or its role changed, after its token was issued:
    the token no longer speaks for it. Signing in again says which."""

    reason = "ACCOUNT_CHANGED"
