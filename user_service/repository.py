"""Reads and writes of users and refresh tokens inside a unit of work's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import Table, bindparam, select, update

from meshkit.data import Statement, Transaction, utcnow
from user_service.models import RefreshToken, User
from user_service.records import (
    REFRESH_TOKEN_FIELDS,
    USER_FIELDS,
    RefreshTokenRecord,
    UserRecord,
)

_users: Table = User.__table__  # type: ignore[assignment]
_tokens: Table = RefreshToken.__table__  # type: ignore[assignment]

# Every statement is built once, here, and run with parameters. The user reads are public
# because `reads.py` runs the same ones outside a transaction.
USER_BY_ID = Statement(select(_users).where(_users.c.id == bindparam("user_id")))
USER_BY_EMAIL = Statement(select(_users).where(_users.c.email == bindparam("email")))
# Held until the transaction ends: a change of the account waits for a sign-in under way.
_USER_BY_ID_LOCKED = Statement(
    select(_users).where(_users.c.id == bindparam("user_id")).with_for_update()
)
_ADD_USER = Statement(_users.insert())

# The columns that a change of a user may set, besides its update time. Only the columns that
# change are written, as the ORM did, so that two changes of different columns at the same time
# both stand; each subset has its own statement.
CHANGEABLE = ("full_name", "role", "active", "password_hash")
_CHANGE_USER = {
    frozenset(columns): Statement(
        update(_users)
        .where(_users.c.id == bindparam("user_id"))
        .values({name: bindparam(name) for name in (*columns, "updated_at")})
    )
    for size in range(1, len(CHANGEABLE) + 1)
    for columns in combinations(CHANGEABLE, size)
}

_REVOKE_ACCESS = Statement(
    update(_users)
    .where(_users.c.id == bindparam("user_id"))
    .values(tokens_revoked_at=bindparam("at"), updated_at=bindparam("at"))
)
REVOKED_SINCE = Statement(
    select(_users.c.id, _users.c.tokens_revoked_at).where(
        _users.c.tokens_revoked_at > bindparam("since")
    )
)

_ADD_TOKEN = Statement(_tokens.insert())
_TOKEN_BY_HASH = Statement(select(_tokens).where(_tokens.c.token_hash == bindparam("token_hash")))
_MARK_USED = Statement(
    update(_tokens)
    .where(
        _tokens.c.id == bindparam("token_id"),
        _tokens.c.used_at.is_(None),
        _tokens.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("now"))
)
_REVOKE_FAMILY = Statement(
    update(_tokens)
    .where(_tokens.c.family_id == bindparam("family"), _tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_REVOKE_ALL_OF_USER = Statement(
    update(_tokens)
    .where(_tokens.c.user_id == bindparam("owner"), _tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)


def user_record(row: Mapping[str, Any]) -> UserRecord:
    """The record of a row of the users table, however it was read."""
    return UserRecord(**row)


class UserRepository:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, user_id: str) -> UserRecord | None:
        row = await self.tx.fetchrow(USER_BY_ID, {"user_id": user_id})
        return user_record(row) if row is not None else None

    async def get_locked(self, user_id: str) -> UserRecord | None:
        """The user, its row locked until this transaction ends (on PostgreSQL; SQLite has
        one writer at a time anyway)."""
        row = await self.tx.fetchrow(_USER_BY_ID_LOCKED, {"user_id": user_id})
        return user_record(row) if row is not None else None

    async def by_email(self, email: str) -> UserRecord | None:
        row = await self.tx.fetchrow(USER_BY_EMAIL, {"email": email})
        return user_record(row) if row is not None else None

    async def add(self, user: UserRecord) -> None:
        """A second user with the same email breaks the unique index (`IntegrityViolation`)."""
        await self.tx.execute(_ADD_USER, {name: getattr(user, name) for name in USER_FIELDS})

    async def save(self, stored: UserRecord, user: UserRecord) -> UserRecord:
        """Write what `user` changes of `stored`, the same user as read in this transaction: the
        columns of `CHANGEABLE` whose values differ, and a new update time. Returns the user as
        written; when nothing differs nothing is written, as the ORM did, so the update time
        moves only with a change."""
        changed = {
            name: getattr(user, name)
            for name in CHANGEABLE
            if getattr(user, name) != getattr(stored, name)
        }
        if not changed:
            return stored
        now = utcnow()
        await self.tx.execute(
            _CHANGE_USER[frozenset(changed)], {**changed, "user_id": stored.id, "updated_at": now}
        )
        return replace(user, updated_at=now)

    async def revoke_access(self, user_id: str, at: datetime) -> None:
        """Void the user's access tokens issued before `at`."""
        await self.tx.execute(_REVOKE_ACCESS, {"user_id": user_id, "at": at})


class RefreshTokenRepository:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def add(self, token: RefreshTokenRecord) -> None:
        await self.tx.execute(
            _ADD_TOKEN, {name: getattr(token, name) for name in REFRESH_TOKEN_FIELDS}
        )

    async def by_hash(self, token_hash: str) -> RefreshTokenRecord | None:
        row = await self.tx.fetchrow(_TOKEN_BY_HASH, {"token_hash": token_hash})
        return RefreshTokenRecord(**row) if row is not None else None

    async def mark_used(self, token_id: str, now: datetime) -> bool:
        """Spend a token once: of two concurrent refreshes with it, exactly one wins."""
        return await self.tx.execute(_MARK_USED, {"token_id": token_id, "now": now}) > 0

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self.tx.execute(_REVOKE_FAMILY, {"family": family_id, "now": now})

    async def revoke_all_of_user(self, user_id: str, now: datetime) -> None:
        await self.tx.execute(_REVOKE_ALL_OF_USER, {"owner": user_id, "now": now})
