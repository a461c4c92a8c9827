"""Bodies of the order, payment and timeline endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ecommerce.order.v1 import order_pb2
from ecommerce.payment.v1 import payment_pb2
from gateway.schemas.common import (
    EXAMPLE_IDS,
    EXAMPLE_TIME,
    INT64_MAX,
    INT64_MIN,
    MONEY_EXAMPLE,
    JsonInt,
    Money,
    Schema,
    example,
    money_document,
    rfc3339,
)

OrderStatusName = Literal["PENDING", "PAID", "SHIPPED", "CANCELLED"]
STATUS_NAMES: dict[order_pb2.OrderStatus.ValueType, str] = {
    order_pb2.ORDER_STATUS_PENDING: "PENDING",
    order_pb2.ORDER_STATUS_PAID: "PAID",
    order_pb2.ORDER_STATUS_SHIPPED: "SHIPPED",
    order_pb2.ORDER_STATUS_CANCELLED: "CANCELLED",
}
STATUS_VALUES = {name: number for number, name in STATUS_NAMES.items()}

ADDRESS_EXAMPLE = {
    "recipient": "Grace Hopper",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}
PAYMENT_METHOD_EXAMPLE = "pm_card_visa"
ORDER_EXAMPLE = {
    "id": EXAMPLE_IDS["order"],
    "user_id": EXAMPLE_IDS["user"],
    "status": "PAID",
    "items": [
        {
            "product_id": EXAMPLE_IDS["product"],
            "product_name": "Analytical Engine",
            "quantity": 2,
            "unit_price": MONEY_EXAMPLE,
            "line_total": {"amount_minor": 3998, "currency_code": "USD"},
        }
    ],
    "total": {"amount_minor": 3998, "currency_code": "USD"},
    "payment_method": PAYMENT_METHOD_EXAMPLE,
    "shipping_address": ADDRESS_EXAMPLE,
    "shipment": None,
    "cancel_reason": "",
    "create_time": EXAMPLE_TIME,
    "update_time": "2026-12-07T09:30:02Z",
}


class LineItem(Schema):
    product_id: str = Field(max_length=64)
    # Only int64's bounds: the order service judges 1 to 1000 (400 naming the item).
    quantity: JsonInt = Field(
        ge=INT64_MIN, le=INT64_MAX, description="Units to order, 1 to 1000.", examples=[2]
    )


class Address(Schema):
    recipient: str = Field(max_length=200, examples=["Ada Lovelace"])
    line1: str = Field(max_length=200, examples=["12 St James's Square"])
    line2: str = Field("", max_length=200)
    city: str = Field(max_length=200, examples=["London"])
    postal_code: str = Field("", max_length=32, examples=["SW1Y 4JH"])
    country_code: str = Field(max_length=2, description="ISO 3166-1 alpha-2.", examples=["GB"])

    def to_proto(self) -> order_pb2.Address:
        return order_pb2.Address(**self.model_dump())


class CreateOrderRequest(Schema):
    """Prices and totals are never sent: the server reads them from the catalog."""

    # The product id is the catalog example's: put one of GET /v1/products in its place.
    model_config = example(
        {
            "items": [{"product_id": EXAMPLE_IDS["product"], "quantity": 2}],
            "payment_method": PAYMENT_METHOD_EXAMPLE,
            "shipping_address": ADDRESS_EXAMPLE,
        }
    )

    items: list[LineItem] = Field(max_length=100)
    payment_method: str = Field(
        max_length=64,
        description="A test payment method: pm_card_visa succeeds; pm_card_chargeDeclined and "
        "pm_card_chargeDeclinedInsufficientFunds are declined.",
        examples=["pm_card_visa"],
    )
    shipping_address: Address


class OrderItem(BaseModel):
    product_id: str
    product_name: str
    quantity: int
    unit_price: Money
    line_total: Money


class Shipment(BaseModel):
    carrier: str
    tracking_number: str
    ship_time: datetime | None


class Order(BaseModel):
    model_config = example(ORDER_EXAMPLE)

    id: str
    user_id: str
    status: str = Field(description="PENDING, PAID, SHIPPED or CANCELLED.")
    items: list[OrderItem]
    total: Money
    payment_method: str
    shipping_address: Address
    shipment: Shipment | None = None
    cancel_reason: str = ""
    create_time: datetime | None
    update_time: datetime | None


def order_document(message: order_pb2.Order) -> dict[str, Any]:
    """An order's body (`Order`, field for field) for `gateway.responses.Document`."""
    address = message.shipping_address
    shipment = message.shipment if message.HasField("shipment") else None
    return {
        "id": message.id,
        "user_id": message.user_id,
        "status": STATUS_NAMES.get(message.status, "PENDING"),
        "items": [
            {
                "product_id": item.product_id,
                "product_name": item.product_name,
                "quantity": item.quantity,
                "unit_price": money_document(item.unit_price),
                "line_total": money_document(item.line_total),
            }
            for item in message.items
        ],
        "total": money_document(message.total),
        "payment_method": message.payment_method,
        "shipping_address": {
            "recipient": address.recipient,
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "postal_code": address.postal_code,
            "country_code": address.country_code,
        },
        "shipment": None
        if shipment is None
        else {
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "ship_time": rfc3339(shipment.ship_time),
        },
        "cancel_reason": message.cancel_reason,
        "create_time": rfc3339(message.create_time),
        "update_time": rfc3339(message.update_time),
    }


class OrderList(BaseModel):
    model_config = example({"orders": [ORDER_EXAMPLE], "next_page_token": ""})

    orders: list[Order]
    next_page_token: str


def order_list_document(message: order_pb2.ListOrdersResponse) -> dict[str, Any]:
    """A page of orders (`OrderList`) for `gateway.responses.Document`."""
    return {
        "orders": [order_document(order) for order in message.orders],
        "next_page_token": message.next_page_token,
    }


class CancelRequest(Schema):
    model_config = example({"reason": "Ordered the wrong size."})

    reason: str = Field("", max_length=500)


class ShipRequest(Schema):
    model_config = example({"carrier": "DHL", "tracking_number": "JD014600006281230704"})

    carrier: str = Field(max_length=100, examples=["DHL"])
    tracking_number: str = Field(max_length=100, examples=["JD014600006281230704"])


class TimelineEvent(BaseModel):
    event_id: str
    type: str = Field(description="e.g. order.created, payment.succeeded, notification.sent.")
    source: str = Field(description="The service that recorded it.")
    time: datetime | None
    summary: str


class Timeline(BaseModel):
    model_config = example(
        {
            "order_id": EXAMPLE_IDS["order"],
            "events": [
                {
                    "event_id": "019af3c3c9e07f1a8b2c4d6e8f0a1b78",
                    "type": "order.created",
                    "source": "order_service",
                    "time": EXAMPLE_TIME,
                    "summary": "Order placed: 2 items, 39.98 USD.",
                },
                {
                    "event_id": "019af3c3d1f27a3b9c5d7e9f1a2b3c79",
                    "type": "payment.succeeded",
                    "source": "payment_service",
                    "time": "2026-12-07T09:30:02Z",
                    "summary": "Payment of 39.98 USD succeeded.",
                },
            ],
        }
    )

    order_id: str
    events: list[TimelineEvent]

    @classmethod
    def from_proto(cls, message: order_pb2.OrderTimeline) -> Timeline:
        return cls(
            order_id=message.order_id,
            events=[
                TimelineEvent(
                    event_id=event.event_id,
                    type=event.type,
                    source=event.source,
                    time=rfc3339(event.occur_time),
                    summary=event.summary,
                )
                for event in message.events
            ],
        )


class Payment(BaseModel):
    model_config = example(
        {
            "id": EXAMPLE_IDS["payment"],
            "order_id": EXAMPLE_IDS["order"],
            "status": "SUCCEEDED",
            "amount": {"amount_minor": 3998, "currency_code": "USD"},
            "payment_method": PAYMENT_METHOD_EXAMPLE,
            "failure_code": "",
            "failure_reason": "",
            "create_time": "2026-12-07T09:30:02Z",
            "refund_time": None,
        }
    )

    id: str
    order_id: str
    status: str = Field(
        description="SUCCEEDED, FAILED, or REFUNDED: charged, then given back in full because "
        "the order was cancelled while it was being charged."
    )
    amount: Money
    payment_method: str
    failure_code: str = ""
    failure_reason: str = ""
    create_time: datetime | None
    refund_time: datetime | None = None

    @classmethod
    def from_proto(cls, message: payment_pb2.Payment) -> Payment:
        return cls(
            id=message.id,
            order_id=message.order_id,
            status=payment_pb2.PaymentStatus.Name(message.status).removeprefix("PAYMENT_STATUS_"),
            amount=Money.from_proto(message.amount),
            payment_method=message.payment_method,
            failure_code=message.failure_code,
            failure_reason=message.failure_reason,
            create_time=rfc3339(message.create_time),
            refund_time=rfc3339(message.refund_time),
        )
