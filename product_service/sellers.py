"""Who may sell: the seller an admin names for a product, and the caller of a catalog change,
checked with the user service."""

from __future__ import annotations

import grpc

from ecommerce.user.v1 import user_pb2, user_pb2_grpc
from meshkit.context import Principal
from meshkit.errors import InvalidArgument
from meshkit.identity import confirm_account, find_user

SELLER_FIELD = "product.seller_id"
# An admin may sell too: a product created without a seller is the admin's own.
_MAY_SELL = frozenset({user_pb2.ROLE_SELLER, user_pb2.ROLE_ADMIN})


class Sellers:
    """Checks a seller id over the user service's GetUser, called with this service's token
    (the caller's could do, being an admin's, but the check must not depend on it)."""

    def __init__(self, user_channel: grpc.aio.Channel) -> None:
        self.stub: user_pb2_grpc.UserServiceAsyncStub = user_pb2_grpc.UserServiceStub(user_channel)

    async def check(self, user_id: str) -> None:
        """Returns when `user_id` names an active seller or admin; raises InvalidArgument
        otherwise."""
        user = await find_user(self.stub, user_id)
        if user is None:
            raise InvalidArgument.for_field(SELLER_FIELD, "no such user")
        if user.role not in _MAY_SELL:
            raise InvalidArgument.for_field(SELLER_FIELD, "is not a seller")
        if not user.active:
            raise InvalidArgument.for_field(SELLER_FIELD, "is deactivated")

    async def confirm_caller(self, principal: Principal) -> None:
        """Returns when the caller's account still has the powers its token claims: a change
        to the catalog, which shoppers see at once, is refused once it does not."""
        await confirm_account(self.stub, principal)
