"""Who may call what: checks on the caller, raised as domain errors.

Domain methods are given their caller explicitly and check it with `authorize`; the transport
edge (a servicer) finds the caller of the current request with `require_principal`.
"""

from __future__ import annotations

from meshkit.context import Principal, Role, current_principal
from meshkit.identity.errors import RoleNotAllowed, TokenMissing

# A person's token, not a service's: "me" has no meaning for a service.
USERS = (Role.CUSTOMER, Role.SELLER, Role.ADMIN)


def require_principal() -> Principal:
    """The caller of the current request; TokenMissing when it has none."""
    principal = current_principal()
    if principal is None:
        raise TokenMissing("This call needs a bearer token.")
    return principal


def authorize(caller: Principal | None, *roles: Role) -> Principal:
    """`caller`, when it has one of `roles`; TokenMissing or RoleNotAllowed otherwise."""
    if caller is None:
        raise TokenMissing("This call needs a bearer token.")
    if caller.role not in roles:
        allowed = " or ".join(role.value for role in roles)
        raise RoleNotAllowed(f"This call is for {allowed} callers only.")
    return caller


def require_role(*roles: Role) -> Principal:
    """The caller of the current request, when it has one of `roles`."""
    return authorize(current_principal(), *roles)


def require_user() -> Principal:
    """The current caller, when it is a person (a customer, seller or admin)."""
    return require_role(*USERS)
