"""Past orders written straight into the order database: the demo shop's history, in development.

The demo shop needs sales spread over weeks for analytics to show anything, but an order placed
through the API is stamped with the moment it is placed. Rather than a hidden API parameter or
an SQL script that would drift from the schema, this command writes each past order with the
order service's own repositories, in one unit of work per order:
- the order and its items as `CreateOrder` would have saved them (lines and address validated
  by the same `PlaceOrder` rules), with its creation, payment and shipping times in the past;
- its timeline, one entry per step, with `source` naming this command, so that support never
  mistakes a demo entry for one a service wrote;
- no event: the unit of work has no outbox, so no payment is charged, no email sent and no
  stock reserved. The caller gives the catalog the stock those sales would have left.
It refuses to run unless APP_ENV=development, and is idempotent by the orders' idempotency keys.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from meshkit.data import Database
from meshkit.errors import DomainError
from meshkit.ids import new_id
from order_service.commands import Address, PlaceOrder
from order_service.models import OrderStatus
from order_service.records import ItemRecord, OrderRecord
from order_service.settings import OrderSettings
from order_service.unit_of_work import OrderUnitOfWork

SOURCE = "demo-history"
PAYMENT_TO_CONFIRMATION = timedelta(milliseconds=20)
_STATUSES = (OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.CANCELLED)


@dataclass(frozen=True)
class PastOrder:
    """An order as it stands now, with the moments it went through."""

    order: OrderRecord
    cancelled_at: datetime | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> PastOrder:
        status = str(body["status"])
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}")
        address = Address(**{name: str(value) for name, value in body["address"].items()})
        command = PlaceOrder.validated(
            str(body["key"]),
            [(str(item["product_id"]), int(item["quantity"])) for item in body["items"]],
            str(body["payment_method"]),
            address,
        )
        items = tuple(
            ItemRecord(
                position=position,
                product_id=str(item["product_id"]),
                product_name=str(item["product_name"]),
                seller_id=str(item["seller_id"]),
                quantity=int(item["quantity"]),
                unit_price_minor=int(item["unit_price_minor"]),
            )
            for position, item in enumerate(body["items"])
        )
        placed = _moment(body["placed_at"])
        if placed is None:
            raise ValueError("placed_at is required")
        paid = _moment(body.get("paid_at"))
        shipped = _moment(body.get("shipped_at"))
        cancelled = _moment(body.get("cancelled_at"))
        order = OrderRecord(
            # Dated when it was placed: lists ordered by id show it among its own days.
            id=new_id(at=placed),
            user_id=str(body["user_id"]),
            status=status,
            idempotency_key=command.idempotency_key,
            request_hash=command.fingerprint,
            currency_code=str(body["currency_code"]),
            total_minor=sum(item.line_total_minor for item in items),
            payment_method=command.payment_method,
            shipping_address=address.to_json(),
            cancel_reason=str(body.get("cancel_reason", "")),
            carrier=str(body.get("carrier", "")),
            tracking_number=str(body.get("tracking_number", "")),
            created_at=placed,
            updated_at=max(m for m in (placed, paid, shipped, cancelled) if m is not None),
            paid_at=paid,
            shipped_at=shipped,
            items=items,
        )
        return cls(order=order, cancelled_at=cancelled)

    def timeline(self) -> list[tuple[str, datetime, str]]:
        """Each step the order went through: event type, when, summary."""
        order = self.order
        steps = [("order.created", order.created_at, f"Order placed: {len(order.items)} item(s)")]
        if order.paid_at is not None:
            # The charge comes first and the confirmation from it: entries of one instant
            # would come back in either order.
            charged = max(order.created_at, order.paid_at - PAYMENT_TO_CONFIRMATION)
            steps.append(("payment.succeeded", charged, "Payment succeeded"))
            steps.append(("order.confirmed", order.paid_at, "Order confirmed: paid"))
        if order.shipped_at is not None:
            steps.append(
                (
                    "order.shipped",
                    order.shipped_at,
                    f"Order shipped with {order.carrier}: {order.tracking_number}",
                )
            )
        if self.cancelled_at is not None:
            steps.append(
                ("order.cancelled", self.cancelled_at, f"Order cancelled: {order.cancel_reason}")
            )
        return steps


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


async def write_history(database: Database, orders: Sequence[PastOrder]) -> tuple[int, int]:
    """Write the orders not written yet (by owner and idempotency key); how many were written
    and how many were there already."""
    written = present = 0
    for past in orders:
        order = past.order
        # No outbox: nothing this writes can ever be published.
        async with OrderUnitOfWork(database) as uow:
            if await uow.orders.by_idempotency_key(order.user_id, order.idempotency_key):
                present += 1
                continue
            uow.orders.add(order)
            for event_type, occurred_at, summary in past.timeline():
                uow.timeline.record(
                    event_id=new_id(),
                    order_id=order.id,
                    event_type=event_type,
                    source=SOURCE,
                    occurred_at=occurred_at,
                    summary=summary,
                )
            await uow.commit()
            written += 1
    return written, present


def demo_history(settings: OrderSettings, argv: list[str]) -> None:
    """`python -m order_service demo-history`: past orders as a JSON list on standard input."""
    if argv:
        raise SystemExit("usage: python -m order_service demo-history < orders.json")
    if not settings.is_development:
        raise SystemExit(
            f"error: demo-history writes demo orders in development only "
            f"(APP_ENV={settings.app_env.value})"
        )
    try:
        orders = [PastOrder.from_json(body) for body in json.load(sys.stdin)]
    except (DomainError, KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"error: not a list of past orders: {error}") from None

    async def write() -> tuple[int, int]:
        async with Database.from_settings(settings) as database:
            return await write_history(database, orders)

    written, present = asyncio.run(write())
    print(json.dumps({"written": written, "present": present}))
