"""Composition root of the user service: builds every object it needs from settings."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from datetime import timedelta
from functools import partial
from pathlib import Path

from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.data import Database
from meshkit.identity.revocations import (
    RevokedTokens,
    hear_revocations,
    open_revocation_announcer,
)
from meshkit.rpc import PageTokenCodec, ServiceRegistration
from meshkit.service import ServiceApp, ServiceDefinition
from user_service.accounts import Accounts
from user_service.cli import create_admin, rotate_key
from user_service.grpc_api import PUBLIC_METHODS, AuthService, UserService
from user_service.keys import KeyRing
from user_service.passwords import PasswordHasher
from user_service.settings import UserSettings
from user_service.tokens import AccessTokens
from user_service.unit_of_work import AccountsUnitOfWork

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def build_accounts(
    settings: UserSettings, database: Database, stack: AsyncExitStack | None = None
) -> tuple[Accounts, KeyRing]:
    """The accounts and their keys; with `stack`, revocations heard and announced while it is
    open (a command run once needs neither)."""
    keys = KeyRing.load(
        settings.keys_dir, active_kid=settings.jwt_active_kid, create=settings.is_development
    )
    revoked = RevokedTokens()
    revocations = None
    if stack is not None:
        revoked = hear_revocations(settings.redis_url, stack)
        revocations = open_revocation_announcer(
            revoked, settings.redis_url, stack, keep_seconds=settings.access_token_ttl_seconds
        )
    access_tokens = AccessTokens(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.access_token_ttl_seconds,
        revoked=revoked,
    )
    accounts = Accounts(
        database,
        partial(AccountsUnitOfWork, database),
        PasswordHasher(memory_kib=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost),
        access_tokens,
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        service_token_ttl_seconds=settings.service_token_ttl_seconds,
        service_clients={
            client: secret.get_secret_value() for client, secret in settings.service_clients.items()
        },
        page_tokens=PageTokenCodec(settings.page_token_secret.get_secret_value().encode()),
        revocations=revocations,
    )
    return accounts, keys


async def build(settings: UserSettings, stack: AsyncExitStack) -> ServiceApp:
    database = await stack.enter_async_context(Database.from_settings(settings))
    accounts, keys = build_accounts(settings, database, stack)
    if accounts.revocations is not None:
        # Those a previous run may not have got through to Redis before it stopped.
        ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        await accounts.revocations.restore(await accounts.recent_revocations(ttl))
    if settings.bootstrap_admin_email and settings.bootstrap_admin_password:
        admin = await accounts.ensure_admin(
            settings.bootstrap_admin_email, settings.bootstrap_admin_password.get_secret_value()
        )
        logger.info("bootstrap admin ready", extra={"user_id": admin.id})
    return ServiceApp(
        services=[
            ServiceRegistration(
                user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
                UserService(accounts),
                user_pb2_grpc.add_UserServiceServicer_to_server,
            ),
            ServiceRegistration(
                auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
                AuthService(accounts, keys),
                auth_pb2_grpc.add_AuthServiceServicer_to_server,
            ),
        ],
        public_methods=PUBLIC_METHODS,
        verifier=accounts.access_tokens,
        dependencies=[database.readiness],
    )


DEFINITION = ServiceDefinition(
    settings_cls=UserSettings,
    build=build,
    migrations=MIGRATIONS,
    commands={
        "create-admin": partial(create_admin, build_accounts=build_accounts),
        "rotate-key": rotate_key,
    },
)
