"""gRPC servicers of the order service: messages in, domain calls, messages out."""

from __future__ import annotations

from typing import Any

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import (
    analytics_pb2_grpc,
    cart_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
)
from meshkit.protobuf import timestamp
from order_service.commands import Address, PlaceOrder
from order_service.models import Order, TimelineEvent
from order_service.orders import Orders

Context = Any  # grpc.aio.ServicerContext; unused by these thin adapters

STATUS_TO_PROTO = {
    "PENDING": order_pb2.ORDER_STATUS_PENDING,
    "PAID": order_pb2.ORDER_STATUS_PAID,
    "SHIPPED": order_pb2.ORDER_STATUS_SHIPPED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
}
STATUS_FROM_PROTO = {number: name for name, number in STATUS_TO_PROTO.items()}


def _money(amount: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount, currency_code=currency)


def order_message(order: Order) -> order_pb2.Order:
    address = Address.from_json(order.shipping_address)
    message = order_pb2.Order(
        id=order.id,
        user_id=order.user_id,
        status=STATUS_TO_PROTO[order.status],
        items=[
            order_pb2.OrderItem(
                product_id=item.product_id,
                product_name=item.product_name,
                quantity=item.quantity,
                unit_price=_money(item.unit_price_minor, order.currency_code),
                line_total=_money(item.line_total_minor, order.currency_code),
            )
            for item in order.items
        ],
        total=_money(order.total_minor, order.currency_code),
        payment_method=order.payment_method,
        shipping_address=order_pb2.Address(**address.__dict__),
        cancel_reason=order.cancel_reason,
        create_time=timestamp(order.created_at),
        update_time=timestamp(order.updated_at),
    )
    if order.shipped_at is not None:
        message.shipment.CopyFrom(
            order_pb2.Shipment(
                carrier=order.carrier,
                tracking_number=order.tracking_number,
                ship_time=timestamp(order.shipped_at),
            )
        )
    return message


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
        Address(
            recipient=address.recipient,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            postal_code=address.postal_code,
            country_code=address.country_code.upper(),
        ),
    )


def _timeline_event(event: TimelineEvent) -> order_pb2.TimelineEvent:
    return order_pb2.TimelineEvent(
        event_id=event.event_id,
        type=event.event_type,
        source=event.source,
        occur_time=timestamp(event.occurred_at),
        summary=event.summary,
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
        return order_message(await self.orders.place(command))

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: Context
    ) -> order_pb2.Order:
        return order_message(await self.orders.get(request.id))

    async def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: Context
    ) -> order_pb2.ListOrdersResponse:
        orders, next_token = await self.orders.list(
            status=STATUS_FROM_PROTO.get(request.status),
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
        return order_message(await self.orders.cancel(request.id, request.reason))

    async def ShipOrder(
        self, request: order_pb2.ShipOrderRequest, context: Context
    ) -> order_pb2.Order:
        order = await self.orders.ship(request.id, request.carrier, request.tracking_number)
        return order_message(order)

    async def GetOrderTimeline(
        self, request: order_pb2.GetOrderTimelineRequest, context: Context
    ) -> order_pb2.OrderTimeline:
        events = await self.orders.timeline(request.order_id)
        return order_pb2.OrderTimeline(
            order_id=request.order_id,
            events=[_timeline_event(event) for event in events],
        )


class CartService(cart_pb2_grpc.CartServiceServicer):
    """`ecommerce.order.v1.CartService`: methods not overridden here answer UNIMPLEMENTED."""


class AnalyticsService(analytics_pb2_grpc.AnalyticsServiceServicer):
    """`ecommerce.order.v1.AnalyticsService`: methods not overridden here answer UNIMPLEMENTED."""
