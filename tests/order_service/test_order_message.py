"""An order as the order service answers with it: every field, nested ones included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from ecommerce.common.v1 import money_pb2
from ecommerce.order.v1 import order_pb2
from order_service.messages import order_message
from order_service.records import ItemRecord, OrderRecord

CREATED = datetime(2026, 12, 4, 16, 0, 0, 250_000, tzinfo=UTC)
SHIPPED = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
ADDRESS = {
    "recipient": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}


def a_record(*, shipped: bool, total_minor: int = 5_997) -> OrderRecord:
    return OrderRecord(
        id="o1", user_id="u1", status="SHIPPED" if shipped else "PAID",
        idempotency_key="key", request_hash="hash", currency_code="EUR",
        total_minor=total_minor, payment_method="pm_card_visa",
        shipping_address=json.dumps(ADDRESS), cancel_reason="",
        carrier="DHL" if shipped else "", tracking_number="JD0001" if shipped else "",
        created_at=CREATED, updated_at=CREATED, paid_at=CREATED,
        shipped_at=SHIPPED if shipped else None,
        items=(
            ItemRecord(0, "p1", "Analytical Engine", "s1", 1, 1_999),
            ItemRecord(1, "p2", "Difference Engine", "s1", 2, 1_999),
        ),
    )  # fmt: skip


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _money(amount: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount, currency_code="EUR")


def test_every_field_of_an_order_is_answered() -> None:
    expected = order_pb2.Order(
        id="o1",
        user_id="u1",
        status=order_pb2.ORDER_STATUS_SHIPPED,
        items=[
            order_pb2.OrderItem(
                product_id="p1", product_name="Analytical Engine", quantity=1,
                unit_price=_money(1_999), line_total=_money(1_999),
            ),
            order_pb2.OrderItem(
                product_id="p2", product_name="Difference Engine", quantity=2,
                unit_price=_money(1_999), line_total=_money(3_998),
            ),
        ],
        total=_money(5_997),
        payment_method="pm_card_visa",
        shipping_address=order_pb2.Address(**ADDRESS),
        shipment=order_pb2.Shipment(
            carrier="DHL", tracking_number="JD0001", ship_time=_stamp(SHIPPED)
        ),
        create_time=_stamp(CREATED),
        update_time=_stamp(CREATED),
    )  # fmt: skip
    assert order_message(a_record(shipped=True)) == expected


def test_an_order_not_shipped_has_no_shipment_and_a_free_one_has_a_total() -> None:
    message = order_message(a_record(shipped=False, total_minor=0))
    assert not message.HasField("shipment")
    assert message.HasField("total") and message.total == _money(0)
