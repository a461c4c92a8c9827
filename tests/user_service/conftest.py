"""A real user service in-process on PostgreSQL, and gRPC stubs to call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.service import running_service
from meshkit.settings import load_settings
from user_service.app import DEFINITION
from user_service.settings import UserSettings

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "root password 1"
SERVICE_SECRET = "insecure-dev-service-secret"


def user_settings(database_url: str, keys_dir: Path, **overrides: object) -> UserSettings:
    values: dict[str, object] = {
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "database_url": database_url,
        "jwt_keys_dir": keys_dir,
        "bootstrap_admin_email": ADMIN_EMAIL,
        "bootstrap_admin_password": ADMIN_PASSWORD,
        # Cheap hashing: these tests are about flows, not about argon2's cost.
        "argon2_memory_kib": 1024,
        "argon2_time_cost": 1,
    }
    return load_settings(UserSettings, env_file=None, **{**values, **overrides})


@dataclass
class UserApi:
    address: str
    users: user_pb2_grpc.UserServiceAsyncStub
    auth: auth_pb2_grpc.AuthServiceAsyncStub

    async def register(self, email: str, password: str = "a fine password") -> user_pb2.User:
        return await self.users.Register(
            user_pb2.RegisterRequest(email=email, password=password, full_name="Test User")
        )

    async def login(self, email: str, password: str = "a fine password") -> auth_pb2.TokenPair:
        return await self.auth.Login(auth_pb2.LoginRequest(email=email, password=password))

    async def token_of(self, email: str, password: str = "a fine password") -> str:
        return (await self.login(email, password)).access_token

    async def admin_token(self) -> str:
        return await self.token_of(ADMIN_EMAIL, ADMIN_PASSWORD)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def serving_user_service(settings: UserSettings) -> AsyncIterator[UserApi]:
    """The user service running in-process with `settings`, and stubs to call it."""
    async with (
        running_service(DEFINITION, settings) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield UserApi(
            address=f"127.0.0.1:{server.port}",
            users=user_pb2_grpc.UserServiceStub(channel),
            auth=auth_pb2_grpc.AuthServiceStub(channel),
        )


@pytest.fixture
async def user_api(postgres_url: str, tmp_path: Path) -> AsyncIterator[UserApi]:
    async with serving_user_service(user_settings(postgres_url, tmp_path / "keys")) as api:
        yield api
