"""Orders, their lines and cart lines as plain records: the one shape the domain sees of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """A line of an order as read, not a mapped object: building those cost as much as the
    read itself."""

    position: int
    product_id: str
    product_name: str
    seller_id: str
    quantity: int
    unit_price_minor: int

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as read, with the attributes of `Order` that answers are built from."""

    id: str
    user_id: str
    status: str
    idempotency_key: str
    request_hash: str
    currency_code: str
    total_minor: int
    payment_method: str
    shipping_address: str
    cancel_reason: str
    carrier: str
    tracking_number: str
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    items: tuple[ItemRecord, ...]


@dataclass(frozen=True, slots=True)
class CartLineRecord:
    """A product in a user's cart, with how many of it."""

    user_id: str
    product_id: str
    quantity: int
    added_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of an order, from whichever service: what support traces an order by."""

    event_id: str
    order_id: str
    event_type: str
    source: str
    occurred_at: datetime
    summary: str
