"""Who may call what: checks on the current principal, raised as domain errors."""

from __future__ import annotations

from meshkit.context import Principal, Role, current_principal
from meshkit.identity.errors import RoleNotAllowed, TokenMissing


def require_principal() -> Principal:
    principal = current_principal()
    if principal is None:
        raise TokenMissing("This call needs a bearer token.")
    return principal


def require_role(*roles: Role) -> Principal:
    principal = require_principal()
    if principal.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise RoleNotAllowed(f"This call is for {allowed} callers only.")
    return principal


def require_user() -> Principal:
    """A person's token, not a service's: 'me' has no meaning for a service."""
    return require_role(Role.CUSTOMER, Role.SELLER, Role.ADMIN)
