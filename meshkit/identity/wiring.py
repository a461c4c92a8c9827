"""Wiring to the user service: token verification by its JWKS, and this service's own token."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.context import Principal, Role
from meshkit.errors import DeadlineExceeded, Unavailable
from meshkit.identity.auth import JwksVerifier, ServiceTokenSource
from meshkit.identity.errors import AccountChanged
from meshkit.identity.revocations import hear_revocations
from meshkit.rpc.channels import NO_TOKEN, Channels, create_channel
from meshkit.settings import CommonSettings, ServiceSettings

# Fetching keys or a token happens outside any request's deadline; keep it short.
_IDENTITY_CALL_TIMEOUT = 3.0


def jwks_verifier(
    settings: CommonSettings, user_channel: grpc.aio.Channel, stack: AsyncExitStack
) -> JwksVerifier:
    """A verifier that fetches the public keys from the user service when it needs them, and
    hears its revocations while `stack` is open."""
    stub = auth_pb2_grpc.AuthServiceStub(user_channel)

    async def fetch() -> dict[str, Any]:
        response = await stub.GetJwks(
            auth_pb2.GetJwksRequest(), timeout=_IDENTITY_CALL_TIMEOUT, metadata=NO_TOKEN
        )
        return {
            "keys": [MessageToDict(key, preserving_proto_field_name=True) for key in response.keys]
        }

    return JwksVerifier(
        fetch,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revoked=hear_revocations(settings.redis_url, stack),
    )


def service_token_source(
    settings: ServiceSettings, user_channel: grpc.aio.Channel
) -> ServiceTokenSource:
    """This service's own access token (role `service`), by client credentials."""
    stub = auth_pb2_grpc.AuthServiceStub(user_channel)

    async def issue() -> tuple[str, float]:
        response = await stub.IssueServiceToken(
            auth_pb2.IssueServiceTokenRequest(
                client_id=settings.service_name,
                client_secret=settings.service_client_secret.get_secret_value(),
            ),
            timeout=_IDENTITY_CALL_TIMEOUT,
            # Asking for a token must neither carry the current request's token nor ask
            # this same source for one (it would wait on itself).
            metadata=NO_TOKEN,
        )
        return response.access_token, float(response.expires_in)

    return ServiceTokenSource(issue)


@dataclass(frozen=True)
class UserServiceLink:
    """A service's channels to the user service: `channel` for the public keys and the
    service's own token, `as_service` for calls made as the service itself (`token`)."""

    channel: grpc.aio.Channel
    as_service: grpc.aio.Channel
    token: ServiceTokenSource


def link_user_service(settings: ServiceSettings, channels: Channels) -> UserServiceLink:
    """Open both channels to the user service in `channels`, closed with them."""
    timeout = settings.rpc_timeout_seconds
    channel = channels.add(
        "user_service", create_channel(settings.user_service_addr, timeout_seconds=timeout)
    )
    token = service_token_source(settings, channel)
    as_service = channels.add(
        "user_service_as_service",
        create_channel(settings.user_service_addr, timeout_seconds=timeout, token_source=token),
    )
    return UserServiceLink(channel, as_service, token)


_ROLES = {Role.SELLER: user_pb2.ROLE_SELLER, Role.ADMIN: user_pb2.ROLE_ADMIN}


async def find_user(
    users: user_pb2_grpc.UserServiceAsyncStub, user_id: str
) -> user_pb2.User | None:
    """The user `user_id` names, or None; the user service out of reach is UNAVAILABLE or
    DEADLINE_EXCEEDED to the caller, with nothing changed."""
    try:
        return await users.GetUser(user_pb2.GetUserRequest(id=user_id))
    except grpc.aio.AioRpcError as error:
        if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            raise DeadlineExceeded(
                "The user service did not answer in time; nothing was changed. Retry later."
            ) from None
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            raise Unavailable(
                "The user service is unavailable right now; nothing was changed. Retry later."
            ) from None
        if error.code() is grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def confirm_account(users: user_pb2_grpc.UserServiceAsyncStub, principal: Principal) -> None:
    """Returns when the caller's account is still active with the role its token claims.

    A token outlives a deactivation or a demotion by up to its lifetime; a seller's or an
    admin's powers over what others see must not. `users` should call as the service itself.
    """
    user = await find_user(users, principal.subject)
    if user is None or not user.active or user.role != _ROLES.get(principal.role):
        raise AccountChanged(
            "This account may no longer do this: it was deactivated, or its role changed. "
            "Sign in again."
        )
