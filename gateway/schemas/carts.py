"""Bodies of the cart, notification and analytics endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ecommerce.notification.v1 import notification_pb2
from ecommerce.order.v1 import analytics_pb2, cart_pb2
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
    rfc3339,
)
from gateway.schemas.orders import ADDRESS_EXAMPLE, PAYMENT_METHOD_EXAMPLE, Address
from gateway.schemas.users import USER_EXAMPLE


class SetCartItemRequest(Schema):
    model_config = example({"quantity": 2})

    # Only int64's bounds: the order service judges 1 to 1000 (400 naming the field).
    quantity: JsonInt = Field(
        ge=INT64_MIN,
        le=INT64_MAX,
        description="Units wanted, 1 to 1000; replaces what the cart had.",
        examples=[2],
    )


class CheckoutRequest(Schema):
    model_config = example(
        {"payment_method": PAYMENT_METHOD_EXAMPLE, "shipping_address": ADDRESS_EXAMPLE}
    )

    payment_method: str = Field(max_length=64, examples=["pm_card_visa"])
    shipping_address: Address


class CartItem(BaseModel):
    product_id: str
    product_name: str
    quantity: int
    unit_price: Money | None = Field(description="Today's price; null if the product is gone.")
    line_total: Money | None
    archived: bool = Field(description="No longer sold: checkout would fail until removed.")
    short_of_stock: bool = Field(description="Fewer units in stock than the cart wants.")
    available_stock: int


class Cart(BaseModel):
    model_config = example(
        {
            "items": [
                {
                    "product_id": EXAMPLE_IDS["product"],
                    "product_name": "Analytical Engine",
                    "quantity": 2,
                    "unit_price": MONEY_EXAMPLE,
                    "line_total": {"amount_minor": 3998, "currency_code": "USD"},
                    "archived": False,
                    "short_of_stock": False,
                    "available_stock": 10,
                }
            ],
            "total": {"amount_minor": 3998, "currency_code": "USD"},
            "update_time": EXAMPLE_TIME,
        }
    )

    items: list[CartItem]
    total: Money | None = Field(description="Today's total of the items that can be bought.")
    update_time: datetime | None

    @classmethod
    def from_proto(cls, message: cart_pb2.Cart) -> Cart:
        return cls(
            items=[
                CartItem(
                    product_id=item.product_id,
                    product_name=item.product_name,
                    quantity=item.quantity,
                    unit_price=Money.from_proto(item.unit_price)
                    if item.HasField("unit_price")
                    else None,
                    line_total=Money.from_proto(item.line_total)
                    if item.HasField("line_total")
                    else None,
                    archived=item.archived,
                    short_of_stock=item.short_of_stock,
                    available_stock=item.available_stock,
                )
                for item in message.items
            ],
            total=Money.from_proto(message.total) if message.HasField("total") else None,
            update_time=rfc3339(message.update_time),
        )


class Notification(BaseModel):
    id: str
    order_id: str
    event_type: str
    channel: str
    recipient: str
    subject: str
    status: str = Field(description="PENDING (retrying), SENT or FAILED.")
    failure_reason: str
    attempts: int
    create_time: datetime | None
    sent_time: datetime | None

    @classmethod
    def from_proto(cls, message: notification_pb2.Notification) -> Notification:
        return cls(
            id=message.id,
            order_id=message.order_id,
            event_type=message.event_type,
            channel=notification_pb2.Channel.Name(message.channel).removeprefix("CHANNEL_").lower(),
            recipient=message.recipient,
            subject=message.subject,
            status=notification_pb2.NotificationStatus.Name(message.status).removeprefix(
                "NOTIFICATION_STATUS_"
            ),
            failure_reason=message.failure_reason,
            attempts=message.attempts,
            create_time=rfc3339(message.create_time),
            sent_time=rfc3339(message.sent_time),
        )


class NotificationList(BaseModel):
    model_config = example(
        {
            "notifications": [
                {
                    "id": EXAMPLE_IDS["notification"],
                    "order_id": EXAMPLE_IDS["order"],
                    "event_type": "order.confirmed",
                    "channel": "email",
                    "recipient": USER_EXAMPLE["email"],
                    "subject": "Your order is confirmed",
                    "status": "SENT",
                    "failure_reason": "",
                    "attempts": 1,
                    "create_time": "2026-12-07T09:30:02Z",
                    "sent_time": "2026-12-07T09:30:03Z",
                }
            ],
            "next_page_token": "",
        }
    )

    notifications: list[Notification]
    next_page_token: str


class TopProduct(BaseModel):
    product_id: str
    product_name: str
    quantity: int
    revenue: Money

    @classmethod
    def from_proto(cls, message: analytics_pb2.TopProduct) -> TopProduct:
        return cls(
            product_id=message.product_id,
            product_name=message.product_name,
            quantity=message.quantity,
            revenue=Money.from_proto(message.revenue),
        )


class TopProducts(BaseModel):
    model_config = example(
        {
            "products": [
                {
                    "product_id": EXAMPLE_IDS["product"],
                    "product_name": "Analytical Engine",
                    "quantity": 42,
                    "revenue": {"amount_minor": 83958, "currency_code": "USD"},
                }
            ]
        }
    )

    products: list[TopProduct]


class SalesPeriod(BaseModel):
    period_start: datetime | None
    order_count: int
    revenue: Money


class Sales(BaseModel):
    model_config = example(
        {
            "granularity": "day",
            "periods": [
                {
                    "period_start": "2026-12-06T00:00:00Z",
                    "order_count": 3,
                    "revenue": {"amount_minor": 11994, "currency_code": "USD"},
                },
                {
                    "period_start": EXAMPLE_TIME[:10] + "T00:00:00Z",
                    "order_count": 1,
                    "revenue": {"amount_minor": 3998, "currency_code": "USD"},
                },
            ],
        }
    )

    granularity: str
    periods: list[SalesPeriod]
