"""The user read that other services make on every order and email, on the driver itself.

On PostgreSQL a user comes back through asyncpg directly, as a plain record: through the
ORM (`Session.get`) the read was most of the CPU that `IsUserActive` and `GetUser` cost the
service once the token check is cached. SQLite (the laptop default) reads through the ORM;
`tests/user_service/test_reads.py` holds both to the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from meshkit.data import Database
from user_service.models import User
from user_service.repository import UserRepository

_COLUMNS = tuple(column.name for column in User.__table__.columns)
_USER_BY_ID = f"SELECT {', '.join(_COLUMNS)} FROM users WHERE id = $1"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as read, with the attributes of `User` that answers are built from."""

    id: str
    email: str
    full_name: str
    password_hash: str
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime


async def load_user(db: Database, user_id: str) -> User | UserRecord | None:
    """The user, or None."""
    if not db.is_postgresql:
        async with db.session() as session:
            return await UserRepository(session).get(user_id)
    values = await db.driver_row(_USER_BY_ID, user_id)
    return UserRecord(**values) if values is not None else None
