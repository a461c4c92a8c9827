"""gRPC servicers of the order service: messages in, domain calls, messages out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from ecommerce.order.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    cart_pb2,
    cart_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)
from meshkit.errors import InvalidArgument
from meshkit.identity import require_principal
from meshkit.rpc import money, timestamp, to_datetime
from order_service.analytics import Analytics, Granularity
from order_service.carts import Carts
from order_service.commands import Address, PlaceOrder
from order_service.messages import (
    STATUS_TO_PROTO,
    cart_message,
    order_message,
    timeline_event_message,
)
from order_service.orders import Orders

Context = Any  # grpc.aio.ServicerContext; unused by these thin adapters

STATUS_FROM_PROTO = {number: name for name, number in STATUS_TO_PROTO.items()}


def _status_filter(status: order_pb2.OrderStatus.ValueType) -> str | None:
    """The status a listing is filtered by; unspecified is any, a number the enum does not
    hold is refused rather than ignored (which would list every order)."""
    if status == order_pb2.ORDER_STATUS_UNSPECIFIED:
        return None
    name = STATUS_FROM_PROTO.get(status)
    if name is None:
        raise InvalidArgument.for_field("status", "is not an order status")
    return name


def _address(address: order_pb2.Address) -> Address:
    return Address(
        recipient=address.recipient.strip(),
        line1=address.line1.strip(),
        line2=address.line2.strip(),
        city=address.city.strip(),
        postal_code=address.postal_code.strip(),
        country_code=address.country_code.strip().upper(),
    )


def place_order_command(
    idempotency_key: str,
    items: Any,
    payment_method: str,
    address: order_pb2.Address,
) -> PlaceOrder:
    return PlaceOrder.validated(
        idempotency_key,
        [(item.product_id, item.quantity) for item in items],
        payment_method,
        _address(address),
    )


class OrderService(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, orders: Orders) -> None:
        self.orders = orders

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: Context
    ) -> order_pb2.Order:
        command = place_order_command(
            request.idempotency_key, request.items, request.payment_method, request.shipping_address
        )
        return order_message(await self.orders.place(require_principal(), command))

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: Context
    ) -> order_pb2.Order:
        return order_message(await self.orders.get(require_principal(), request.id))

    async def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: Context
    ) -> order_pb2.ListOrdersResponse:
        orders, next_token = await self.orders.list(
            require_principal(),
            status=_status_filter(request.status),
            user_id=request.user_id,
            requested_size=request.page_size,
            page_token=request.page_token,
        )
        return order_pb2.ListOrdersResponse(
            orders=[order_message(order) for order in orders], next_page_token=next_token
        )

    async def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: Context
    ) -> order_pb2.Order:
        return order_message(
            await self.orders.cancel(require_principal(), request.id, request.reason)
        )

    async def ShipOrder(
        self, request: order_pb2.ShipOrderRequest, context: Context
    ) -> order_pb2.Order:
        order = await self.orders.ship(
            require_principal(), request.id, request.carrier, request.tracking_number
        )
        return order_message(order)

    async def GetOrderTimeline(
        self, request: order_pb2.GetOrderTimelineRequest, context: Context
    ) -> order_pb2.OrderTimeline:
        events = await self.orders.timeline(require_principal(), request.order_id)
        return order_pb2.OrderTimeline(
            order_id=request.order_id,
            events=[timeline_event_message(event) for event in events],
        )


class CartService(cart_pb2_grpc.CartServiceServicer):
    def __init__(self, carts: Carts) -> None:
        self.carts = carts

    async def GetCart(self, request: cart_pb2.GetCartRequest, context: Context) -> cart_pb2.Cart:
        return cart_message(await self.carts.view(require_principal()))

    async def SetCartItem(
        self, request: cart_pb2.SetCartItemRequest, context: Context
    ) -> cart_pb2.Cart:
        return cart_message(
            await self.carts.set_item(require_principal(), request.product_id, request.quantity)
        )

    async def RemoveCartItem(
        self, request: cart_pb2.RemoveCartItemRequest, context: Context
    ) -> cart_pb2.Cart:
        return cart_message(await self.carts.remove_item(require_principal(), request.product_id))

    async def ClearCart(
        self, request: cart_pb2.ClearCartRequest, context: Context
    ) -> cart_pb2.Cart:
        return cart_message(await self.carts.clear(require_principal()))

    async def CheckoutCart(
        self, request: cart_pb2.CheckoutCartRequest, context: Context
    ) -> order_pb2.Order:
        order = await self.carts.checkout(
            require_principal(),
            request.idempotency_key,
            request.payment_method,
            _address(request.shipping_address),
        )
        return order_message(order)


_GRANULARITY = {
    analytics_pb2.GRANULARITY_DAY: Granularity.DAY,
    analytics_pb2.GRANULARITY_WEEK: Granularity.WEEK,
    analytics_pb2.GRANULARITY_MONTH: Granularity.MONTH,
}


def _time_or_none(value: timestamp_pb2.Timestamp, has: bool, field: str) -> datetime | None:
    if not has:
        return None
    try:
        return to_datetime(value)
    except OverflowError:
        # A Timestamp may hold any int64 of seconds; a time is between years 1 and 9999.
        raise InvalidArgument.for_field(
            field, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None


class AnalyticsService(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, analytics: Analytics) -> None:
        self.analytics = analytics

    async def GetTopProducts(
        self, request: analytics_pb2.GetTopProductsRequest, context: Context
    ) -> analytics_pb2.GetTopProductsResponse:
        start = _time_or_none(request.start_time, request.HasField("start_time"), "start_time")
        end = _time_or_none(request.end_time, request.HasField("end_time"), "end_time")
        rows = await self.analytics.top_products(require_principal(), start, end, request.limit)
        return analytics_pb2.GetTopProductsResponse(
            products=[
                analytics_pb2.TopProduct(
                    product_id=row.product_id,
                    product_name=row.product_name,
                    quantity=row.quantity,
                    revenue=money(row.revenue_minor, row.currency_code),
                )
                for row in rows
            ]
        )

    async def GetSales(
        self, request: analytics_pb2.GetSalesRequest, context: Context
    ) -> analytics_pb2.GetSalesResponse:
        granularity = _GRANULARITY.get(request.granularity)
        if granularity is None:
            raise InvalidArgument.for_field("granularity", "must be day, week or month")
        start = _time_or_none(request.start_time, request.HasField("start_time"), "start_time")
        end = _time_or_none(request.end_time, request.HasField("end_time"), "end_time")
        rows = await self.analytics.sales(require_principal(), granularity, start, end)
        return analytics_pb2.GetSalesResponse(
            periods=[
                analytics_pb2.SalesPeriod(
                    period_start_time=timestamp(row.start),
                    order_count=row.order_count,
                    revenue=money(row.revenue_minor, row.currency_code),
                )
                for row in rows
            ]
        )
