"""Who may sell: the seller an admin names for a product, and the caller of a catalog change,
checked with the user service."""

from __future__ import annotations

import grpc

from ecommerce.user.v1 import user_pb2, user_pb2_grpc
from meshkit.context import Principal, Role
from meshkit.errors import DeadlineExceeded, InvalidArgument, PermissionDenied, Unavailable

SELLER_FIELD = "product.seller_id"
# An admin may sell too: a product created without a seller is the admin's own.
_MAY_SELL = frozenset({user_pb2.ROLE_SELLER, user_pb2.ROLE_ADMIN})
_ROLES = {Role.SELLER: user_pb2.ROLE_SELLER, Role.ADMIN: user_pb2.ROLE_ADMIN}


class Sellers:
    """Checks a seller id over the user service's GetUser, called with this service's token
    (the caller's could do, being an admin's, but the check must not depend on it)."""

    def __init__(self, user_channel: grpc.aio.Channel) -> None:
        self.stub = user_pb2_grpc.UserServiceStub(user_channel)

    async def check(self, user_id: str) -> None:
        """Returns when `user_id` names an active seller or admin; raises InvalidArgument
        otherwise."""
        user = await self._user(user_id)
        if user is None:
            raise InvalidArgument.for_field(SELLER_FIELD, "no such user")
        if user.role not in _MAY_SELL:
            raise InvalidArgument.for_field(SELLER_FIELD, "is not a seller")
        if not user.active:
            raise InvalidArgument.for_field(SELLER_FIELD, "is deactivated")

    async def confirm_caller(self, principal: Principal) -> None:
        """Returns when the caller's account is still active with the role its token claims.

        An access token outlives a deactivation or a demotion by up to its lifetime; a change
        to the catalog, which shoppers see at once, should not.
        """
        user = await self._user(principal.subject)
        if user is None or not user.active or user.role != _ROLES.get(principal.role):
            raise PermissionDenied(
                "This account may no longer change the catalog: it was deactivated, or its "
                "role changed. Sign in again."
            )

    async def _user(self, user_id: str) -> user_pb2.User | None:
        try:
            user: user_pb2.User = await self.stub.GetUser(user_pb2.GetUserRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded(
                    "The user service did not answer in time; nothing was changed. Retry later."
                ) from None
            if error.code() is grpc.StatusCode.UNAVAILABLE:
                raise Unavailable(
                    "The user service is unavailable right now; nothing was changed. Retry later."
                ) from None
            raise
        return user
