"""The user service over real gRPC on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2

from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.service import running_service
from meshkit.settings import PROJECT_ROOT
from tests.user_service.conftest import (
    ADMIN_EMAIL,
    SERVICE_SECRET,
    UserApi,
    bearer,
    user_settings,
)
from user_service.app import DEFINITION

pytestmark = pytest.mark.integration


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    # grpc's stubs declare a tuple of `_Metadatum`; grpc.aio gives its `Metadata` of (key, value).
    for key, value in cast(grpc.aio.Metadata | None, error.trailing_metadata()) or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes)
            status = status_pb2.Status.FromString(value)
            bad_request = error_details_pb2.BadRequest()
            for detail in status.details:
                detail.Unpack(bad_request)
            return {v.field: v.description for v in bad_request.field_violations}
    return {}


async def expect(code: grpc.StatusCode, call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() is code, raised.value.details()
    return raised.value


async def test_register_then_login_then_profile(user_api: UserApi) -> None:
    user = await user_api.register("Ada@Example.com")
    assert user.email == "ada@example.com"
    assert user.role == user_pb2.ROLE_CUSTOMER and user.active
    pair = await user_api.login("ADA@example.com")
    assert pair.token_type == "Bearer" and pair.expires_in == 900
    me = await user_api.users.GetCurrentUser(
        user_pb2.GetCurrentUserRequest(), metadata=bearer(pair.access_token)
    )
    assert me.id == user.id


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        ("not-an-email", "a fine password", "email", "not a valid email"),
        ("bob@example.com", "short", "password", "at least 8"),
        ("bob@example.com", "bob@example.com", "password", "not be the email"),
    ],
)
async def test_bad_registrations_name_the_field(
    user_api: UserApi, email: str, password: str, field: str, message: str
) -> None:
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, user_api.register(email, password))
    assert message in violations(error)[field]


async def test_taken_email_is_already_exists(user_api: UserApi) -> None:
    await user_api.register("carol@example.com")
    await expect(grpc.StatusCode.ALREADY_EXISTS, user_api.register("CAROL@example.com"))


async def test_concurrent_registrations_of_one_email_make_one_account(user_api: UserApi) -> None:
    results = await asyncio.gather(
        *(user_api.register("race@example.com") for _ in range(5)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, user_pb2.User)]
    assert len(created) == 1
    assert all(
        isinstance(r, grpc.aio.AioRpcError) and r.code() is grpc.StatusCode.ALREADY_EXISTS
        for r in results
        if r not in created
    )


async def test_wrong_password_and_unknown_email_look_the_same(user_api: UserApi) -> None:
    await user_api.register("dave@example.com")
    wrong = await expect(
        grpc.StatusCode.UNAUTHENTICATED, user_api.login("dave@example.com", "nope nope")
    )
    unknown = await expect(grpc.StatusCode.UNAUTHENTICATED, user_api.login("nobody@example.com"))
    assert wrong.details() == unknown.details()


async def test_refresh_rotates_and_reuse_revokes_the_family(user_api: UserApi) -> None:
    await user_api.register("eve@example.com")
    first = await user_api.login("eve@example.com")
    refresh = user_api.auth.RefreshToken
    second = await refresh(auth_pb2.RefreshTokenRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    # The thief replays the spent token: refused, and the whole family dies with it.
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        refresh(auth_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)),
    )
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        refresh(auth_pb2.RefreshTokenRequest(refresh_token=second.refresh_token)),
    )
    # Another login (another family) is untouched.
    other = await user_api.login("eve@example.com")
    assert await refresh(auth_pb2.RefreshTokenRequest(refresh_token=other.refresh_token))


async def test_concurrent_refreshes_with_one_token_let_one_through(user_api: UserApi) -> None:
    await user_api.register("race2@example.com")
    pair = await user_api.login("race2@example.com")
    results = await asyncio.gather(
        *(
            user_api.auth.RefreshToken(
                auth_pb2.RefreshTokenRequest(refresh_token=pair.refresh_token)
            )
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, auth_pb2.TokenPair) for r in results) <= 1


async def test_logout_revokes_the_refresh_token(user_api: UserApi) -> None:
    await user_api.register("fay@example.com")
    pair = await user_api.login("fay@example.com")
    await user_api.auth.Logout(
        auth_pb2.LogoutRequest(refresh_token=pair.refresh_token), metadata=bearer(pair.access_token)
    )
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=pair.refresh_token)),
    )


async def test_logout_needs_a_token(user_api: UserApi) -> None:
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.Logout(auth_pb2.LogoutRequest(refresh_token="x")),
    )


async def test_change_password_needs_the_current_one_and_signs_out(user_api: UserApi) -> None:
    await user_api.register("gus@example.com")
    pair = await user_api.login("gus@example.com")
    change = user_api.users.ChangePassword
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        change(
            user_pb2.ChangePasswordRequest(
                current_password="wrong one!", new_password="new password 2"
            ),
            metadata=bearer(pair.access_token),
        ),
    )
    assert "current_password" in violations(error)
    await change(
        user_pb2.ChangePasswordRequest(
            current_password="a fine password", new_password="new password 2"
        ),
        metadata=bearer(pair.access_token),
    )
    await expect(grpc.StatusCode.UNAUTHENTICATED, user_api.login("gus@example.com"))
    assert await user_api.login("gus@example.com", "new password 2")
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=pair.refresh_token)),
    )


async def test_update_own_name_but_not_role(user_api: UserApi) -> None:
    await user_api.register("hal@example.com")
    token = await user_api.token_of("hal@example.com")
    updated = await user_api.users.UpdateCurrentUser(
        user_pb2.UpdateCurrentUserRequest(
            user=user_pb2.User(full_name="Hal 9000"),
            update_mask=field_mask_pb2.FieldMask(paths=["full_name"]),
        ),
        metadata=bearer(token),
    )
    assert updated.full_name == "Hal 9000"
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user_api.users.UpdateCurrentUser(
            user_pb2.UpdateCurrentUserRequest(
                user=user_pb2.User(role=user_pb2.ROLE_ADMIN),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            ),
            metadata=bearer(token),
        ),
    )


async def test_admin_promotes_a_seller_and_customers_cannot(user_api: UserApi) -> None:
    ivy = await user_api.register("ivy@example.com")
    customer_token = await user_api.token_of("ivy@example.com")
    promote = user_pb2.UpdateUserRequest(
        user=user_pb2.User(id=ivy.id, role=user_pb2.ROLE_SELLER),
        update_mask=field_mask_pb2.FieldMask(paths=["role"]),
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        user_api.users.UpdateUser(promote, metadata=bearer(customer_token)),
    )
    promoted = await user_api.users.UpdateUser(
        promote, metadata=bearer(await user_api.admin_token())
    )
    assert promoted.role == user_pb2.ROLE_SELLER
    token = await user_api.token_of("ivy@example.com")
    me = await user_api.users.GetCurrentUser(
        user_pb2.GetCurrentUserRequest(), metadata=bearer(token)
    )
    assert me.role == user_pb2.ROLE_SELLER


async def test_another_users_profile_is_denied(user_api: UserApi) -> None:
    jan = await user_api.register("jan@example.com")
    await user_api.register("kim@example.com")
    kim_token = await user_api.token_of("kim@example.com")
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        user_api.users.GetUser(user_pb2.GetUserRequest(id=jan.id), metadata=bearer(kim_token)),
    )
    admin = bearer(await user_api.admin_token())
    assert (
        await user_api.users.GetUser(user_pb2.GetUserRequest(id=jan.id), metadata=admin)
    ).id == jan.id
    await expect(
        grpc.StatusCode.NOT_FOUND,
        user_api.users.GetUser(user_pb2.GetUserRequest(id="nope"), metadata=admin),
    )


async def test_deactivated_user_cannot_log_in_or_refresh(user_api: UserApi) -> None:
    lou = await user_api.register("lou@example.com")
    pair = await user_api.login("lou@example.com")
    admin = bearer(await user_api.admin_token())
    deactivated = await user_api.users.DeactivateUser(
        user_pb2.DeactivateUserRequest(id=lou.id), metadata=admin
    )
    assert not deactivated.active
    await expect(grpc.StatusCode.UNAUTHENTICATED, user_api.login("lou@example.com"))
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=pair.refresh_token)),
    )


async def test_list_users_pages_through_everyone(user_api: UserApi) -> None:
    for n in range(5):
        await user_api.register(f"page{n}@example.com")
    admin = bearer(await user_api.admin_token())
    seen: list[str] = []
    token = ""
    while True:
        page = await user_api.users.ListUsers(
            user_pb2.ListUsersRequest(page_size=2, page_token=token), metadata=admin
        )
        seen += [user.email for user in page.users]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6  # five plus the admin
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user_api.users.ListUsers(user_pb2.ListUsersRequest(page_size=101), metadata=admin),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user_api.users.ListUsers(user_pb2.ListUsersRequest(page_token="forged"), metadata=admin),
    )


async def test_service_token_and_is_user_active(user_api: UserApi) -> None:
    mia = await user_api.register("mia@example.com")
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.IssueServiceToken(
            auth_pb2.IssueServiceTokenRequest(client_id="order_service", client_secret="guess")
        ),
    )
    issued = await user_api.auth.IssueServiceToken(
        auth_pb2.IssueServiceTokenRequest(client_id="order_service", client_secret=SERVICE_SECRET)
    )
    service = bearer(issued.access_token)
    active = await user_api.users.IsUserActive(
        user_pb2.IsUserActiveRequest(id=mia.id), metadata=service
    )
    assert active.active
    unknown = await user_api.users.IsUserActive(
        user_pb2.IsUserActiveRequest(id="nobody"), metadata=service
    )
    assert not unknown.active
    assert (
        await user_api.users.GetUser(user_pb2.GetUserRequest(id=mia.id), metadata=service)
    ).id == mia.id
    customer = bearer(await user_api.token_of("mia@example.com"))
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        user_api.users.IsUserActive(user_pb2.IsUserActiveRequest(id="someone"), metadata=customer),
    )


async def test_jwks_lists_the_signing_key(user_api: UserApi) -> None:
    jwks = await user_api.auth.GetJwks(auth_pb2.GetJwksRequest())
    assert [key.alg for key in jwks.keys] == ["RS256"]
    assert jwks.keys[0].kid and jwks.keys[0].n and jwks.keys[0].e == "AQAB"


async def test_bootstrap_admin_is_idempotent(postgres_url: str, tmp_path: Path) -> None:
    settings = user_settings(postgres_url, tmp_path / "keys")
    for _ in range(2):  # a restart with the same configuration
        async with running_service(DEFINITION, settings) as server:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                api = UserApi(
                    address="",
                    users=user_pb2_grpc.UserServiceStub(channel),
                    auth=auth_pb2_grpc.AuthServiceStub(channel),
                )
                admin = bearer(await api.admin_token())
                page = await api.users.ListUsers(user_pb2.ListUsersRequest(), metadata=admin)
                assert [u.email for u in page.users] == [ADMIN_EMAIL]
                assert page.users[0].role == user_pb2.ROLE_ADMIN


async def test_create_admin_command(postgres_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "USER_SERVICE_DATABASE_URL": postgres_url,
        "JWT_KEYS_DIR": str(tmp_path / "keys"),
        "ARGON2_MEMORY_KIB": "1024",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "user_service",
        "create-admin",
        "--email",
        "boss@example.com",
        "--password-stdin",
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(b"boss password 1\n"), 60)
    assert process.returncode == 0, stderr.decode()
    assert "boss@example.com is ready" in stdout.decode()
    settings = user_settings(postgres_url, tmp_path / "keys", bootstrap_admin_email=None)
    async with running_service(DEFINITION, settings) as server:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            pair = await auth_pb2_grpc.AuthServiceStub(channel).Login(
                auth_pb2.LoginRequest(email="boss@example.com", password="boss password 1")
            )
            assert pair.access_token


async def test_create_admin_refuses_a_weak_password(postgres_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "USER_SERVICE_DATABASE_URL": postgres_url, "JWT_KEYS_DIR": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "user_service",
        "create-admin",
        "--email",
        "boss@example.com",
        "--password-stdin",
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(b"short\n"), 60)
    assert process.returncode != 0
    assert "at least 8 characters" in stderr.decode()


async def test_a_signed_out_refresh_token_says_so_rather_than_used_already(
    user_api: UserApi,
) -> None:
    await user_api.register("ned@example.com")
    pair = await user_api.login("ned@example.com")
    await user_api.users.ChangePassword(
        user_pb2.ChangePasswordRequest(
            current_password="a fine password", new_password="new password 3"
        ),
        metadata=bearer(pair.access_token),
    )
    error = await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.auth.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=pair.refresh_token)),
    )
    assert "signed out" in (error.details() or "")


async def test_a_deactivated_accounts_unexpired_token_cannot_change_it(user_api: UserApi) -> None:
    # Revoked at once in the user service, Redis or not (`meshkit.identity.revocations`).
    ola = await user_api.register("ola@example.com")
    own = bearer(await user_api.token_of("ola@example.com"))
    await user_api.users.DeactivateUser(
        user_pb2.DeactivateUserRequest(id=ola.id), metadata=bearer(await user_api.admin_token())
    )
    rename = user_pb2.UpdateCurrentUserRequest(
        user=user_pb2.User(full_name="Still Here"),
        update_mask=field_mask_pb2.FieldMask(paths=["full_name"]),
    )
    await expect(
        grpc.StatusCode.UNAUTHENTICATED, user_api.users.UpdateCurrentUser(rename, metadata=own)
    )
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.users.ChangePassword(
            user_pb2.ChangePasswordRequest(
                current_password="a fine password", new_password="new password 4"
            ),
            metadata=own,
        ),
    )


async def test_is_user_active_needs_an_id(user_api: UserApi) -> None:
    issued = await user_api.auth.IssueServiceToken(
        auth_pb2.IssueServiceTokenRequest(client_id="order_service", client_secret=SERVICE_SECRET)
    )
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user_api.users.IsUserActive(
            user_pb2.IsUserActiveRequest(), metadata=bearer(issued.access_token)
        ),
    )
    assert "id" in violations(error)


@pytest.mark.parametrize("change", ["deactivated", "demoted"])
async def test_an_admins_unexpired_token_loses_its_powers_with_the_account(
    user_api: UserApi, change: str
) -> None:
    # Not even to restore its own rights: the token outlives the change, its powers must not.
    pia = await user_api.register(f"pia-{change}@example.com")
    boss = bearer(await user_api.admin_token())
    await user_api.users.UpdateUser(
        user_pb2.UpdateUserRequest(
            user=user_pb2.User(id=pia.id, role=user_pb2.ROLE_ADMIN),
            update_mask=field_mask_pb2.FieldMask(paths=["role"]),
        ),
        metadata=boss,
    )
    own = bearer(await user_api.token_of(f"pia-{change}@example.com"))
    if change == "deactivated":
        await user_api.users.DeactivateUser(
            user_pb2.DeactivateUserRequest(id=pia.id), metadata=boss
        )
    else:
        await user_api.users.UpdateUser(
            user_pb2.UpdateUserRequest(
                user=user_pb2.User(id=pia.id, role=user_pb2.ROLE_CUSTOMER),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            ),
            metadata=boss,
        )
    restore = user_pb2.UpdateUserRequest(
        user=user_pb2.User(id=pia.id, role=user_pb2.ROLE_ADMIN, active=True),
        update_mask=field_mask_pb2.FieldMask(paths=["role", "active"]),
    )
    await expect(grpc.StatusCode.UNAUTHENTICATED, user_api.users.UpdateUser(restore, metadata=own))
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.users.ListUsers(user_pb2.ListUsersRequest(), metadata=own),
    )
    await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        user_api.users.DeactivateUser(user_pb2.DeactivateUserRequest(id=pia.id), metadata=own),
    )
    still = await user_api.users.GetUser(user_pb2.GetUserRequest(id=pia.id), metadata=boss)
    assert still.role != user_pb2.ROLE_ADMIN or not still.active
