"""Reads of users that change nothing, outside any unit of work, as the records it gives.

On PostgreSQL a user by id (the read that other services make on every order and email) comes
back through asyncpg directly: through the ORM (`Session.get`) the read was most of the CPU
that `IsUserActive` and `GetUser` cost the service once the token check is cached. The other
reads, and every read on SQLite (the laptop default), run the repository's Core statements on a
read session. `tests/user_service/test_reads.py` holds both paths to the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, bindparam, select

from meshkit.data import Database, Statement
from user_service.models import User
from user_service.records import USER_FIELDS, UserRecord
from user_service.repository import REVOKED_SINCE, USER_BY_EMAIL, USER_BY_ID, user_record

_users: Table = User.__table__  # type: ignore[assignment]

_USER_BY_ID = f"SELECT {', '.join(USER_FIELDS)} FROM users WHERE id = $1"
# A page of users in the order of their ids, which is the keyset: the first page, and the next.
_FIRST_USERS = Statement(
    select(_users).order_by(_users.c.id).limit(bindparam("limit", type_=Integer))
)
_USERS_AFTER = Statement(
    select(_users)
    .where(_users.c.id > bindparam("after_id"))
    .order_by(_users.c.id)
    .limit(bindparam("limit", type_=Integer))
)


async def load_user(db: Database, user_id: str) -> UserRecord | None:
    """The user, or None."""
    if not db.is_postgresql:
        found = await _read(db, USER_BY_ID, {"user_id": user_id})
        return found[0] if found else None
    values = await db.driver_row(_USER_BY_ID, user_id)
    return user_record(values) if values is not None else None


async def find_user_by_email(db: Database, email: str) -> UserRecord | None:
    """The user with this (normalized) email, or None."""
    found = await _read(db, USER_BY_EMAIL, {"email": email})
    return found[0] if found else None


async def page_of_users(db: Database, after_id: str | None, limit: int) -> list[UserRecord]:
    """Up to `limit` users in the order of their ids, after `after_id` when it is given."""
    if after_id is None:
        return await _read(db, _FIRST_USERS, {"limit": limit})
    return await _read(db, _USERS_AFTER, {"after_id": after_id, "limit": limit})


async def recent_revocations(db: Database, since: datetime) -> dict[str, float]:
    """By user, when its access tokens were last voided, for those voided after `since`."""
    async with db.session() as session:
        result = await session.execute(REVOKED_SINCE.statement, {"since": since})
        return {row.id: row.tokens_revoked_at.timestamp() for row in result}


async def _read(db: Database, statement: Statement, params: Mapping[str, Any]) -> list[UserRecord]:
    async with db.session() as session:
        result = await session.execute(statement.statement, dict(params))
        return [user_record(dict(row)) for row in result.mappings()]
