"""Per-request state carried across awaits: request id, correlation id, caller, deadline."""

from __future__ import annotations

import random
import time
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
AUTHORIZATION_HEADER = "authorization"


class Role(StrEnum):
    """Who a caller is, as the access token says."""

    CUSTOMER = "customer"
    SELLER = "seller"
    ADMIN = "admin"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, or a service acting with a service token."""

    subject: str
    role: Role
    token: str
    token_id: str = ""
    # When the token was issued (`iat`, seconds since the epoch): a revocation voids the
    # tokens issued before it.
    issued_at: float = 0.0

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_service(self) -> bool:
        return self.role is Role.SERVICE

    @property
    def is_privileged(self) -> bool:
        """Admins and services may act on any user's resources."""
        return self.role in (Role.ADMIN, Role.SERVICE)


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
principal_var: ContextVar[Principal | None] = ContextVar("principal", default=None)
# Absolute time.monotonic() by which the current inbound call must finish, when it has one.
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)


def new_request_id() -> str:
    """32 random hex digits. An id is not a secret, so its bits come from `random`: a uuid4
    asked the kernel for its bytes (a system call) on every request."""
    return f"{random.getrandbits(128):032x}"


def current_request_id() -> str | None:
    return request_id_var.get()


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_principal() -> Principal | None:
    return principal_var.get()


def remaining_time() -> float | None:
    """Seconds left before the inbound call's deadline, or None when it has none."""
    deadline = deadline_var.get()
    if deadline is None:
        return None
    return deadline - time.monotonic()
