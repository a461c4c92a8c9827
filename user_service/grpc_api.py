"""gRPC servicers of the user service: messages in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.context import Role
from meshkit.identity import require_principal
from meshkit.rpc import mask_paths, timestamp
from user_service.accounts import Accounts, TokenPair, UserChanges
from user_service.keys import KeyRing
from user_service.records import UserRecord

Context = Any  # grpc.aio.ServicerContext; unused by these thin adapters

_ROLE_TO_PROTO = {
    Role.CUSTOMER.value: user_pb2.ROLE_CUSTOMER,
    Role.SELLER.value: user_pb2.ROLE_SELLER,
    Role.ADMIN.value: user_pb2.ROLE_ADMIN,
    Role.SERVICE.value: user_pb2.ROLE_SERVICE,
}
_ROLE_FROM_PROTO = {number: Role(name) for name, number in _ROLE_TO_PROTO.items()}

PUBLIC_METHODS = frozenset(
    {
        "/ecommerce.user.v1.UserService/Register",
        "/ecommerce.user.v1.AuthService/Login",
        "/ecommerce.user.v1.AuthService/RefreshToken",
        "/ecommerce.user.v1.AuthService/IssueServiceToken",
        "/ecommerce.user.v1.AuthService/GetJwks",
    }
)


def user_message(user: UserRecord) -> user_pb2.User:
    return user_pb2.User(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=_ROLE_TO_PROTO[user.role],
        active=user.active,
        create_time=timestamp(user.created_at),
        update_time=timestamp(user.updated_at),
    )


def _token_pair(pair: TokenPair) -> auth_pb2.TokenPair:
    return auth_pb2.TokenPair(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type="Bearer",
        expires_in=pair.expires_in,
    )


def _changes(message: user_pb2.User, paths: set[str]) -> UserChanges:
    return UserChanges(
        full_name=message.full_name if "full_name" in paths else None,
        role=_ROLE_FROM_PROTO.get(message.role, Role.SERVICE) if "role" in paths else None,
        active=message.active if "active" in paths else None,
    )


class UserService(user_pb2_grpc.UserServiceServicer):
    """Each call that needs a token finds its caller here, once, and gives it to the domain:
    the interceptor has refused any such call that came without one."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def Register(self, request: user_pb2.RegisterRequest, context: Context) -> user_pb2.User:
        user = await self.accounts.register(request.email, request.password, request.full_name)
        return user_message(user)

    async def GetCurrentUser(
        self, request: user_pb2.GetCurrentUserRequest, context: Context
    ) -> user_pb2.User:
        return user_message(await self.accounts.current_user(require_principal()))

    async def UpdateCurrentUser(
        self, request: user_pb2.UpdateCurrentUserRequest, context: Context
    ) -> user_pb2.User:
        paths = mask_paths(request.update_mask, {"full_name"})
        user = await self.accounts.update_current_user(
            require_principal(), _changes(request.user, paths)
        )
        return user_message(user)

    async def ChangePassword(
        self, request: user_pb2.ChangePasswordRequest, context: Context
    ) -> user_pb2.ChangePasswordResponse:
        await self.accounts.change_password(
            require_principal(), request.current_password, request.new_password
        )
        return user_pb2.ChangePasswordResponse()

    async def ListUsers(
        self, request: user_pb2.ListUsersRequest, context: Context
    ) -> user_pb2.ListUsersResponse:
        users, next_token = await self.accounts.list_users(
            require_principal(), request.page_size, request.page_token
        )
        return user_pb2.ListUsersResponse(
            users=[user_message(user) for user in users], next_page_token=next_token
        )

    async def GetUser(self, request: user_pb2.GetUserRequest, context: Context) -> user_pb2.User:
        return user_message(await self.accounts.get_user(require_principal(), request.id))

    async def UpdateUser(
        self, request: user_pb2.UpdateUserRequest, context: Context
    ) -> user_pb2.User:
        paths = mask_paths(request.update_mask, {"full_name", "role", "active"})
        user = await self.accounts.update_user(
            require_principal(), request.user.id, _changes(request.user, paths)
        )
        return user_message(user)

    async def DeactivateUser(
        self, request: user_pb2.DeactivateUserRequest, context: Context
    ) -> user_pb2.User:
        return user_message(await self.accounts.deactivate_user(require_principal(), request.id))

    async def IsUserActive(
        self, request: user_pb2.IsUserActiveRequest, context: Context
    ) -> user_pb2.IsUserActiveResponse:
        active = await self.accounts.is_user_active(require_principal(), request.id)
        return user_pb2.IsUserActiveResponse(active=active)


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, accounts: Accounts, keys: KeyRing) -> None:
        self.accounts = accounts
        self.keys = keys

    async def Login(self, request: auth_pb2.LoginRequest, context: Context) -> auth_pb2.TokenPair:
        return _token_pair(await self.accounts.login(request.email, request.password))

    async def RefreshToken(
        self, request: auth_pb2.RefreshTokenRequest, context: Context
    ) -> auth_pb2.TokenPair:
        return _token_pair(await self.accounts.refresh(request.refresh_token))

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Context
    ) -> auth_pb2.LogoutResponse:
        await self.accounts.logout(require_principal(), request.refresh_token)
        return auth_pb2.LogoutResponse()

    async def IssueServiceToken(
        self, request: auth_pb2.IssueServiceTokenRequest, context: Context
    ) -> auth_pb2.ServiceToken:
        issued = await self.accounts.issue_service_token(request.client_id, request.client_secret)
        return auth_pb2.ServiceToken(
            access_token=issued.token, token_type="Bearer", expires_in=issued.expires_in
        )

    async def GetJwks(self, request: auth_pb2.GetJwksRequest, context: Context) -> auth_pb2.Jwks:
        return auth_pb2.Jwks(keys=[auth_pb2.JsonWebKey(**key) for key in self.keys.jwks()["keys"]])
