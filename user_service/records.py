"""Users and refresh tokens as plain records: the one shape the domain reads and writes."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user: the columns of `models.User`, whether read by the driver, by a read session or
    by the repository in a unit of work."""

    id: str
    email: str
    full_name: str
    password_hash: str
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime
    # Access tokens issued before this are void (`meshkit.identity.revocations`).
    tokens_revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """One issued refresh token: the columns of `models.RefreshToken`."""

    id: str
    user_id: str
    family_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


# The fields of each record, in order: what an insert writes of it.
USER_FIELDS = tuple(field.name for field in fields(UserRecord))
REFRESH_TOKEN_FIELDS = tuple(field.name for field in fields(RefreshTokenRecord))
