"""The user service's unit of work and its repositories, on PostgreSQL and on SQLite: what they
write is what every read gives back, and nothing is written without a commit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meshkit.data import Database, IntegrityViolation
from meshkit.ids import new_id
from tests.conftest import DatabaseFactory
from user_service.models import metadata
from user_service.reads import find_user_by_email, load_user, page_of_users
from user_service.records import RefreshTokenRecord, UserRecord
from user_service.unit_of_work import AccountsUnitOfWork

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 11, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> Database:
    return await database_on_each_backend(metadata)


def a_user() -> UserRecord:
    return UserRecord(
        id=new_id(),
        email=f"{new_id()}@example.com",
        full_name="Ada Lovelace",
        password_hash="$argon2id$not-a-real-hash",
        role="customer",
        active=True,
        created_at=CREATED,
        updated_at=CREATED,
    )


def a_token(user_id: str, family_id: str) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        id=new_id(),
        user_id=user_id,
        family_id=family_id,
        token_hash=new_id() * 2,
        created_at=CREATED,
        expires_at=CREATED + timedelta(days=30),
        used_at=None,
        revoked_at=None,
    )


async def add(database: Database, user: UserRecord) -> None:
    async with AccountsUnitOfWork(database) as uow:
        await uow.users.add(user)
        await uow.commit()


async def test_a_user_written_is_read_back_the_same_everywhere(database: Database) -> None:
    user = a_user()
    await add(database, user)
    async with AccountsUnitOfWork(database) as uow:
        in_transaction = await uow.users.get(user.id)
        by_email = await uow.users.by_email(user.email)
    assert in_transaction == by_email == user
    assert await load_user(database, user.id) == user
    assert await find_user_by_email(database, user.email) == user


async def test_nothing_is_written_without_a_commit(database: Database) -> None:
    async with AccountsUnitOfWork(database) as uow:
        await uow.users.add(a_user())

    async def add_then_fail() -> None:
        async with AccountsUnitOfWork(database) as uow:
            await uow.users.add(a_user())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await add_then_fail()
    assert await page_of_users(database, None, 10) == []


async def test_a_taken_email_is_an_integrity_violation(database: Database) -> None:
    user = a_user()
    await add(database, user)
    with pytest.raises(IntegrityViolation):
        await add(database, replace(user, id=new_id()))


async def test_save_writes_only_what_changed_and_moves_the_update_time(
    database: Database,
) -> None:
    user = a_user()
    await add(database, user)
    async with AccountsUnitOfWork(database) as uow:
        unchanged = await uow.users.save(user, replace(user))
        await uow.commit()
    assert unchanged == user
    assert await load_user(database, user.id) == user

    # Another change of another column meanwhile: saving the name keeps it.
    async with AccountsUnitOfWork(database) as uow:
        await uow.users.save(user, replace(user, role="seller"))
        await uow.commit()
    async with AccountsUnitOfWork(database) as uow:
        renamed = await uow.users.save(user, replace(user, full_name="Ada King"))
        await uow.commit()
    assert renamed.full_name == "Ada King" and renamed.updated_at > user.updated_at
    assert await load_user(database, user.id) == replace(renamed, role="seller")


async def test_pages_follow_the_ids(database: Database) -> None:
    users = sorted((a_user() for _ in range(5)), key=lambda user: user.id)
    for user in users:
        await add(database, user)
    first = await page_of_users(database, None, 2)
    rest = await page_of_users(database, first[-1].id, 10)
    assert first + rest == users


async def test_a_refresh_token_is_spent_once_and_its_family_revoked(database: Database) -> None:
    user = a_user()
    await add(database, user)
    family = new_id()
    token, sibling = a_token(user.id, family), a_token(user.id, family)
    other = a_token(user.id, new_id())  # another login's
    now = CREATED + timedelta(hours=1)
    async with AccountsUnitOfWork(database) as uow:
        for each in (token, sibling, other):
            await uow.refresh_tokens.add(each)
        await uow.commit()
    async with AccountsUnitOfWork(database) as uow:
        assert await uow.refresh_tokens.by_hash(token.token_hash) == token
        assert await uow.refresh_tokens.mark_used(token.id, now)
        assert not await uow.refresh_tokens.mark_used(token.id, now)
        await uow.refresh_tokens.revoke_family(family, now)
        await uow.commit()
    async with AccountsUnitOfWork(database) as uow:
        spent = await uow.refresh_tokens.by_hash(token.token_hash)
        revoked = await uow.refresh_tokens.by_hash(sibling.token_hash)
        untouched = await uow.refresh_tokens.by_hash(other.token_hash)
    assert spent == replace(token, used_at=now, revoked_at=now)
    assert revoked == replace(sibling, revoked_at=now)
    assert untouched == other
    async with AccountsUnitOfWork(database) as uow:
        assert not await uow.refresh_tokens.mark_used(sibling.id, now)  # revoked
        await uow.refresh_tokens.revoke_all_of_user(user.id, now)
        await uow.commit()
    async with AccountsUnitOfWork(database) as uow:
        assert await uow.refresh_tokens.by_hash(other.token_hash) == replace(other, revoked_at=now)
