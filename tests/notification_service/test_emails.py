"""Every event the notification service emails about renders, in text and HTML, with its facts."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from ecommerce.common.v1 import money_pb2
from ecommerce.events.v1 import events_pb2
from meshkit.messaging import EVENT_TYPES
from notification_service.emails import SUBJECTS, EmailRenderer
from notification_service.notifications import NOTIFIED_EVENTS

TOTAL = money_pb2.Money(amount_minor=12_345, currency_code="EUR")


def sample(event_type: str) -> Message:
    body = EVENT_TYPES[event_type]()
    for name, value in (("order_id", "o-42"), ("user_id", "u1")):
        setattr(body, name, value)
    for name in ("total", "amount"):
        if name in body.DESCRIPTOR.fields_by_name:
            getattr(body, name).CopyFrom(TOTAL)
    return body


@pytest.mark.parametrize("event_type", NOTIFIED_EVENTS)
def test_each_notified_event_renders_in_text_and_html(event_type: str) -> None:
    email = EmailRenderer().render(event_type, sample(event_type), customer_name="Ada")
    assert email.subject == SUBJECTS[event_type]
    assert "o-42" in email.text
    assert "Ada" in email.text


def test_a_refund_says_how_much_went_back() -> None:
    refund = events_pb2.PaymentRefunded(order_id="o-42", amount=TOTAL)
    email = EmailRenderer().render("payment.refunded", refund, customer_name="Ada")
    assert "123.45 EUR" in email.text
    assert "123.45 EUR" in email.html
