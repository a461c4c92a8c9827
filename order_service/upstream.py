"""The order service's view of the services it calls: catalog (products, stock), users,
payments (only to finish an order the saga left behind) and notifications (an order's
emails, for its timeline)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import grpc

from ecommerce.notification.v1 import notification_pb2, notification_pb2_grpc
from ecommerce.payment.v1 import payment_pb2, payment_pb2_grpc
from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from ecommerce.user.v1 import user_pb2, user_pb2_grpc
from meshkit.context import Principal
from meshkit.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
)
from meshkit.identity import confirm_account
from meshkit.rpc import domain_reason, rich_status, timestamp
from order_service.errors import OutOfStock, ProductNotSold

_RESERVE_REFUSALS: dict[str, type[FailedPrecondition]] = {
    OutOfStock.reason: OutOfStock,
    ProductNotSold.reason: ProductNotSold,
}
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class ProductInfo:
    id: str
    name: str
    seller_id: str
    price_minor: int
    currency_code: str
    stock: int
    archived: bool


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


def _product_info(product: product_pb2.Product) -> ProductInfo:
    return ProductInfo(
        id=product.id,
        name=product.name,
        seller_id=product.seller_id,
        price_minor=product.price.amount_minor,
        currency_code=product.price.currency_code,
        stock=product.stock,
        archived=product.archived,
    )


def _unavailable(what: str, error: grpc.aio.AioRpcError) -> Unavailable | DeadlineExceeded:
    """What the caller is told when `what` could not be reached or did not answer in time.

    "Nothing was changed" holds for placing an order too: its stock is released when the
    reservation's outcome is unknown (`Orders.place`).
    """
    if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(
            f"The {what} did not answer in time; nothing was changed. Retry later."
        )
    return Unavailable(f"The {what} is unavailable right now; nothing was changed. Retry later.")


class Catalog:
    """Products and stock reservations, over the product service's gRPC API."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = product_pb2_grpc.ProductServiceStub(channel)

    async def products(self, ids: Sequence[str]) -> dict[str, ProductInfo]:
        """Current name, seller and price of each product; unknown ids are field errors."""
        results = await asyncio.gather(
            *(self.stub.GetProduct(product_pb2.GetProductRequest(id=pid)) for pid in ids),
            return_exceptions=True,
        )
        found: dict[str, ProductInfo] = {}
        missing: list[FieldViolation] = []
        for index, (pid, result) in enumerate(zip(ids, results, strict=True)):
            if isinstance(result, grpc.aio.AioRpcError):
                if result.code() in _UNREACHABLE:
                    raise _unavailable("product catalog", result)
                if result.code() is grpc.StatusCode.NOT_FOUND:
                    missing.append(FieldViolation(f"items[{index}].product_id", "no such product"))
                    continue
                raise result
            if isinstance(result, BaseException):
                raise result
            found[pid] = _product_info(result)
        if missing:
            raise InvalidArgument("Some items name products that do not exist.", missing)
        return found

    async def reserve(self, order_id: str, lines: Iterable[Line]) -> dict[str, ProductInfo]:
        """All or nothing; idempotent per order id. The reserved products, by id, as their
        stock was taken: what the order is priced by."""
        request = product_pb2.ReserveStockRequest(
            order_id=order_id,
            items=[
                product_pb2.StockItem(product_id=line.product_id, quantity=line.quantity)
                for line in lines
            ],
        )
        try:
            reserved = await self.stub.ReserveStock(request)
        except grpc.aio.AioRpcError as error:
            if error.code() in _UNREACHABLE:
                raise _unavailable("product catalog", error) from None
            if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                # The catalog's reason (out of stock, archived) stays the order's reason.
                refusal = _RESERVE_REFUSALS.get(domain_reason(rich_status(error)) or "")
                raise (refusal or FailedPrecondition)(
                    error.details() or "Not enough stock."
                ) from None
            raise
        if {product.id for product in reserved.products} != {
            item.product_id for item in request.items
        }:
            # A catalog from before it priced reservations (a rollout), or a product gone
            # since a first reservation of this order: priced as they are now.
            return await self.products([item.product_id for item in request.items])
        return {product.id: _product_info(product) for product in reserved.products}

    async def held_reservations(self, start: datetime, end: datetime) -> list[str]:
        """Ids of the orders whose stock is still reserved, reserved in [start, end)."""
        window = product_pb2.ListHeldReservationsRequest(
            reserve_time_start=timestamp(start), reserve_time_end=timestamp(end)
        )
        order_ids: list[str] = []
        while True:
            page = await self.stub.ListHeldReservations(window)
            order_ids.extend(page.order_ids)
            if not page.next_page_token:
                return order_ids
            window.page_token = page.next_page_token

    async def release(self, order_id: str) -> bool:
        """Give the order's stock back; a no-op when it was released already."""
        response = await self.stub.ReleaseStock(product_pb2.ReleaseStockRequest(order_id=order_id))
        return response.released


class Users:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub: user_pb2_grpc.UserServiceAsyncStub = user_pb2_grpc.UserServiceStub(channel)

    async def confirm(self, principal: Principal) -> None:
        """Returns when the caller's account still has the powers its token claims."""
        await confirm_account(self.stub, principal)

    async def is_active(self, user_id: str) -> bool:
        try:
            response = await self.stub.IsUserActive(user_pb2.IsUserActiveRequest(id=user_id))
        except grpc.aio.AioRpcError as error:
            if error.code() in _UNREACHABLE:
                raise _unavailable("user service", error) from None
            raise
        return response.active


class Payments:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub: payment_pb2_grpc.PaymentServiceAsyncStub = payment_pb2_grpc.PaymentServiceStub(
            channel
        )

    async def of_order(self, order_id: str) -> payment_pb2.Payment | None:
        """The order's payment, or None while it has none; UNAVAILABLE or DEADLINE_EXCEEDED
        when the payment service cannot say."""
        try:
            return await self.stub.GetPayment(payment_pb2.GetPaymentRequest(order_id=order_id))
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() in _UNREACHABLE:
                raise _unavailable("payment service", error) from None
            raise


class Notifications:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub: notification_pb2_grpc.NotificationServiceAsyncStub = (
            notification_pb2_grpc.NotificationServiceStub(channel)
        )

    async def sent_about(self, order_id: str) -> list[notification_pb2.Notification]:
        """The emails sent about an order, oldest first; UNAVAILABLE or DEADLINE_EXCEEDED
        when the notification service cannot say."""
        try:
            answer = await self.stub.GetOrderNotifications(
                notification_pb2.GetOrderNotificationsRequest(order_id=order_id)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _UNREACHABLE:
                raise _unavailable("notification service", error) from None
            if error.code() is grpc.StatusCode.UNIMPLEMENTED:
                # A version from before it answers this, while a rollout replaces it.
                raise Unavailable(
                    "The notification service cannot list an order's emails yet. Retry later."
                ) from None
            raise
        return [
            notification
            for notification in answer.notifications
            if notification.status == notification_pb2.NOTIFICATION_STATUS_SENT
        ]
