"""Orders, timelines and carts as protobuf messages: the shapes the API returns."""

from __future__ import annotations

import json
from typing import Any

from ecommerce.order.v1 import cart_pb2, order_pb2
from meshkit.rpc import money, timestamp, to_timestamp
from order_service.carts import CartView
from order_service.records import OrderRecord, TimelineEntry

STATUS_TO_PROTO = {
    "PENDING": order_pb2.ORDER_STATUS_PENDING,
    "PAID": order_pb2.ORDER_STATUS_PAID,
    "SHIPPED": order_pb2.ORDER_STATUS_SHIPPED,
    "CANCELLED": order_pb2.ORDER_STATUS_CANCELLED,
}


def order_message(order: OrderRecord) -> order_pb2.Order:
    # Nested fields given as dicts are built in place; given as messages, they would be built
    # and then copied. The address's JSON is read straight in for the same reason.
    currency = order.currency_code
    message = order_pb2.Order(
        id=order.id,
        user_id=order.user_id,
        status=STATUS_TO_PROTO[order.status],
        payment_method=order.payment_method,
        shipping_address=json.loads(order.shipping_address),
        cancel_reason=order.cancel_reason,
        create_time=timestamp(order.created_at),
        update_time=timestamp(order.updated_at),
    )
    message.total.amount_minor = order.total_minor
    message.total.currency_code = currency
    add_item = message.items.add
    for item in order.items:
        add_item(
            product_id=item.product_id,
            product_name=item.product_name,
            quantity=item.quantity,
            unit_price=_money_fields(item.unit_price_minor, currency),
            line_total=_money_fields(item.line_total_minor, currency),
        )
    if order.shipped_at is not None:
        shipment = message.shipment
        shipment.carrier = order.carrier
        shipment.tracking_number = order.tracking_number
        shipment.ship_time.CopyFrom(to_timestamp(order.shipped_at))
    return message


def _money_fields(amount: int, currency: str) -> dict[str, Any]:
    return {"amount_minor": amount, "currency_code": currency}


def timeline_event_message(event: TimelineEntry) -> order_pb2.TimelineEvent:
    return order_pb2.TimelineEvent(
        event_id=event.event_id,
        type=event.event_type,
        source=event.source,
        occur_time=timestamp(event.occurred_at),
        summary=event.summary,
    )


def cart_message(cart: CartView) -> cart_pb2.Cart:
    currency = cart.currency_code
    message = cart_pb2.Cart(
        user_id=cart.user_id,
        items=[
            cart_pb2.CartItem(
                product_id=line.product_id,
                product_name=line.product.name if line.product else "",
                quantity=line.quantity,
                unit_price=money(line.product.price_minor, line.product.currency_code)
                if line.product
                else None,
                line_total=money(
                    line.product.price_minor * line.quantity, line.product.currency_code
                )
                if line.product
                else None,
                archived=line.archived,
                short_of_stock=line.short_of_stock,
                available_stock=line.product.stock if line.product else 0,
            )
            for line in cart.lines
        ],
        total=money(cart.total_minor, currency) if currency else None,
    )
    updated = timestamp(cart.updated_at)
    if updated is not None:
        message.update_time.CopyFrom(updated)
    return message
