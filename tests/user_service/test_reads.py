"""The driver-level user read gives what the ORM gives, on PostgreSQL and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshkit.data import Database
from meshkit.ids import new_id
from tests.conftest import DatabaseFactory
from user_service.grpc_api import user_message
from user_service.models import User, metadata
from user_service.reads import load_user
from user_service.records import USER_FIELDS, UserRecord

pytestmark = pytest.mark.integration


def record_of(user: User) -> UserRecord:
    """A user as mapped by the ORM, in the record that the service answers from."""
    return UserRecord(**{name: getattr(user, name) for name in USER_FIELDS})


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(metadata)


@pytest.mark.parametrize(("role", "active"), [("customer", True), ("seller", False)])
async def test_the_fast_read_equals_the_orm_read(
    database: Database, role: str, active: bool
) -> None:
    created = datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC)
    user = User(
        id=new_id(),
        email=f"{new_id()}@example.com",
        full_name="Ada Lovelace",
        password_hash="$argon2id$not-a-real-hash",
        role=role,
        active=active,
        created_at=created,
        updated_at=created + timedelta(minutes=5),
    )
    async with database.transaction() as session:
        session.add(user)

    loaded = await load_user(database, user.id)
    async with database.session() as session:
        mapped = await session.get(User, user.id)
    through_orm = record_of(mapped) if mapped is not None else None

    assert loaded is not None and through_orm is not None
    assert user_message(loaded) == user_message(through_orm)
    assert (loaded.active, loaded.password_hash) == (active, user.password_hash)
    assert loaded.updated_at == user.updated_at and loaded.updated_at.tzinfo is not None


async def test_an_unknown_user_is_none(database: Database) -> None:
    assert await load_user(database, new_id()) is None
