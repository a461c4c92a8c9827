"""Which events become emails, and how they read (Jinja templates, HTML autoescaped)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2

# Minor units per major unit where it is not 100 (ISO 4217 exponents).
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF"})

SUBJECTS = {
    "order.created": "We received your order",
    "order.confirmed": "Your order is confirmed",
    "order.cancelled": "Your order was cancelled",
    "order.shipped": "Your order has shipped",
    "payment.failed": "We could not take your payment",
    "payment.refunded": "Your payment was refunded",
}


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def format_money(money: money_pb2.Money) -> str:
    if money.currency_code in _ZERO_DECIMAL:
        return f"{money.amount_minor} {money.currency_code}"
    return f"{money.amount_minor / 100:,.2f} {money.currency_code}"


def _facts(event: Message) -> dict[str, Any]:
    """What a template may say about an event."""
    if isinstance(event, events_pb2.OrderCreated):
        return {
            "items": [
                {
                    "name": line.product_name,
                    "quantity": line.quantity,
                    "price": format_money(line.unit_price),
                }
                for line in event.items
            ],
            "total": format_money(event.total),
        }
    if isinstance(event, events_pb2.OrderConfirmed):
        return {"total": format_money(event.total)}
    if isinstance(event, events_pb2.OrderCancelled):
        return {"reason": event.reason}
    if isinstance(event, events_pb2.OrderShipped):
        return {"carrier": event.carrier, "tracking_number": event.tracking_number}
    if isinstance(event, events_pb2.PaymentFailed):
        return {
            "total": format_money(event.amount),
            "reason": event.failure_reason or event.failure_code,
        }
    if isinstance(event, events_pb2.PaymentRefunded):
        return {"total": format_money(event.amount)}
    return {}


class EmailRenderer:
    def __init__(self, directory: Path = Path(__file__).parent / "templates") -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, event_type: str, event: Message, *, customer_name: str) -> Email:
        subject = SUBJECTS[event_type]
        context = {
            "subject": subject,
            "customer_name": customer_name,
            "order_id": getattr(event, "order_id", ""),
            **_facts(event),
        }
        return Email(
            subject=subject,
            text=self.env.get_template(f"{event_type}.txt").render(context),
            html=self.env.get_template(f"{event_type}.html").render(context),
        )
