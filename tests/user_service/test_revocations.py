"""The user service's side of revocations: what it keeps, and what a restart announces again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from redis.asyncio import Redis

from ecommerce.user.v1 import user_pb2
from meshkit.context import Principal, Role
from meshkit.data import Database
from meshkit.data.migrations import upgrade_to_head_async
from meshkit.identity.revocations import REVOKED_KEY
from tests.conftest import REDIS_URL
from tests.user_service.conftest import UserApi, bearer, serving_user_service, user_settings
from user_service.app import MIGRATIONS, build_accounts
from user_service.errors import DeactivatedSignIn, SessionSignedOut
from user_service.reads import load_user


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.delete(REVOKED_KEY)
    yield client
    await client.delete(REVOKED_KEY)
    await client.aclose()


async def test_a_restart_announces_recent_revocations_again(
    postgres_url: str, tmp_path: Path, redis: Redis
) -> None:
    settings = user_settings(postgres_url, tmp_path / "keys", redis_url=REDIS_URL)
    async with serving_user_service(settings) as api:
        ola = await api.register("ola@example.com")
        await api.users.DeactivateUser(
            user_pb2.DeactivateUserRequest(id=ola.id), metadata=bearer(await api.admin_token())
        )
        announced = await redis.zscore(REVOKED_KEY, ola.id)
        assert announced is not None
    # As if the announcement had never reached Redis before the service stopped.
    await redis.delete(REVOKED_KEY)
    async with serving_user_service(settings):
        again = await redis.zscore(REVOKED_KEY, ola.id)
    assert again == pytest.approx(announced, abs=1e-3)


async def test_without_redis_the_user_service_still_refuses_a_revoked_token(
    user_api: UserApi,
) -> None:
    await user_api.register("uma@example.com")
    token = await user_api.token_of("uma@example.com")
    me = await user_api.users.GetCurrentUser(
        user_pb2.GetCurrentUserRequest(), metadata=bearer(token)
    )
    await user_api.users.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=me.id, role=user_pb2.ROLE_SELLER),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=bearer(await user_api.admin_token()),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await user_api.users.GetCurrentUser(
            user_pb2.GetCurrentUserRequest(), metadata=bearer(token)
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.value.details() or "")
    fresh = await user_api.token_of("uma@example.com")
    again = await user_api.users.GetCurrentUser(
        user_pb2.GetCurrentUserRequest(), metadata=bearer(fresh)
    )
    assert again.role == user_pb2.ROLE_SELLER


@pytest.mark.parametrize("change", ["deactivated", "new password"])
async def test_a_sign_in_the_account_changed_under_gets_no_token(
    postgres_url: str, tmp_path: Path, change: str
) -> None:
    """A sign-in checked the account, then the account changed before its tokens were made:
    it gets none (a token issued then would outlive the revocation the change made)."""
    settings = user_settings(postgres_url, tmp_path / "keys")
    await upgrade_to_head_async(MIGRATIONS, settings.database_url)
    async with Database.from_settings(settings) as database:
        accounts, _ = build_accounts(settings, database)
        registered = await accounts.register("vic@example.com", "a fine password", "Vic")
        checked = await load_user(database, registered.id)  # what the sign-in checked
        assert checked is not None
        if change == "deactivated":
            async with accounts.unit_of_work() as uow:
                stored = await uow.users.get(registered.id)
                assert stored is not None
                await uow.users.save(stored, replace(stored, active=False))
                await uow.commit()
            expected: type[Exception] = DeactivatedSignIn
        else:
            me = Principal(subject=registered.id, role=Role.CUSTOMER, token="t")
            await accounts.change_password(me, "a fine password", "another fine password")
            expected = SessionSignedOut
        with pytest.raises(expected):
            await accounts._new_session(checked, family_id="f")
