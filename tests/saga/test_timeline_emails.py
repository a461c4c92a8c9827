"""An order's timeline shows the emails sent about it, asked of the notification service when
it is read: in time order among the order's own events, for its owner only, and UNAVAILABLE,
not silently without them, while the notification service cannot answer. A notification.sent
an earlier version publishes during a rollout is acked and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import insert

from ecommerce.events.v1 import events_pb2
from ecommerce.notification.v1.notification_pb2 import GetOrderNotificationsRequest
from ecommerce.notification.v1.notification_pb2_grpc import NotificationServiceStub
from ecommerce.order.v1 import order_pb2
from meshkit.data import Database, utcnow
from notification_service.app import DEFINITION as NOTIFICATION
from notification_service.models import Notification, NotificationStatus
from order_service.app import DEFINITION as ORDER
from order_service.models import TimelineEvent
from payment_service.app import DEFINITION as PAYMENT
from tests.conftest import PostgresFactory
from tests.saga.conftest import Saga, bearer, dead_letters, publish_event
from tests.smtp import SmtpServer
from tests.support import eventually, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def failed_email(order_id: str, user_id: str) -> Notification:
    now = utcnow()
    return Notification(
        id=uuid.uuid4().hex,
        source_message_id=uuid.uuid4().hex,
        user_id=user_id,
        order_id=order_id,
        event_type="order.shipped",
        recipient="customer@example.com",
        subject="Shipped",
        body_text="text",
        body_html="<p>html</p>",
        status=NotificationStatus.FAILED,
        failure_reason="refused",
        attempts=12,
        created_at=now,
        next_attempt_at=now,
    )


def handled(event_type: str) -> float:
    """Messages of `event_type` the order service's consumer handled, in this process."""
    labels = {"queue": "order_service", "event_type": event_type, "outcome": "handled"}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def timeline_of(saga: Saga, order_id: str, token: str) -> order_pb2.OrderTimeline:
    return await saga.orders.GetOrderTimeline(
        order_pb2.GetOrderTimelineRequest(order_id=order_id), metadata=bearer(token)
    )


async def test_the_timeline_shows_the_emails_sent_in_time_order(
    saga_base: Saga, postgres_databases: PostgresFactory, smtp: SmtpServer
) -> None:
    saga = saga_base
    saga.databases["notification_service"] = await postgres_databases()
    await saga.start(
        "notification_service", NOTIFICATION, smtp_port=smtp.port, mail_poll_seconds=0.2
    )
    await saga.start("order_service", ORDER)
    await saga.start("payment_service", PAYMENT)
    product = await saga.new_product(stock=5)
    order = await saga.place(product, key=uuid.uuid4().hex)
    await saga.wait_status(order.id, order_pb2.ORDER_STATUS_PAID)
    # A row an earlier version recorded from its notification.sent event: the notification
    # service answers for that email now, and it shows once.
    async with Database(saga.databases["order_service"]) as orders_db:
        async with orders_db.transaction() as session:
            await session.execute(
                insert(TimelineEvent).values(
                    event_id=uuid.uuid4().hex,
                    order_id=order.id,
                    event_type="notification.sent",
                    source="notification_service",
                    occurred_at=utcnow(),
                    summary="Email sent to the customer about order.created",
                )
            )

    async def both_emails_shown() -> order_pb2.OrderTimeline | None:
        timeline = await timeline_of(saga, order.id, saga.customer)
        emails = [e for e in timeline.events if e.type == "notification.sent"]
        return timeline if len(emails) >= 2 else None

    timeline = await eventually(both_emails_shown, timeout=20, message="both emails shown")
    events = list(timeline.events)
    assert [e.type for e in events if e.type != "notification.sent"] == [
        "order.created",
        "payment.succeeded",
        "order.confirmed",
    ]
    emails = [(e.source, e.summary) for e in events if e.type == "notification.sent"]
    assert sorted(emails) == [
        ("notification_service", "Email sent to the customer about order.confirmed"),
        ("notification_service", "Email sent to the customer about order.created"),
    ]
    assert len({e.event_id for e in events}) == len(events) == 5
    # Oldest first, each email after the event it is about.
    times = [e.occur_time.ToDatetime() for e in events]
    assert times == sorted(times)
    position = {e.summary: index for index, e in enumerate(events)}
    kinds = [e.type for e in events]
    assert position["Email sent to the customer about order.created"] > kinds.index("order.created")
    assert position["Email sent to the customer about order.confirmed"] > kinds.index(
        "order.confirmed"
    )
    assert len(smtp.received()) == 2

    # An email that could not be sent is not on the timeline; the notification service
    # lists it, with the others, to whom may see them.
    async with Database(saga.databases["notification_service"]) as notifications_db:
        async with notifications_db.transaction() as session:
            session.add(failed_email(order.id, saga.customer_id))
    assert len((await timeline_of(saga, order.id, saga.customer)).events) == 5
    notifications = NotificationServiceStub(saga.channel("notification_service"))
    listed = await notifications.GetOrderNotifications(
        GetOrderNotificationsRequest(order_id=order.id), metadata=bearer(saga.customer)
    )
    assert [n.event_type for n in listed.notifications] == [
        "order.created",
        "order.confirmed",
        "order.shipped",
    ]
    _, stranger = await saga.new_user("stranger@example.com")
    for_stranger = await notifications.GetOrderNotifications(
        GetOrderNotificationsRequest(order_id=order.id), metadata=bearer(stranger)
    )
    assert list(for_stranger.notifications) == []
    # And the timeline is refused to them before anything is asked.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await timeline_of(saga, order.id, stranger)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    for metadata, code in (
        (bearer(saga.customer), grpc.StatusCode.INVALID_ARGUMENT),  # no order id
        ((), grpc.StatusCode.UNAUTHENTICATED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await notifications.GetOrderNotifications(
                GetOrderNotificationsRequest(order_id="" if metadata else order.id),
                metadata=metadata,
            )
        assert bad.value.code() is code


async def test_a_leftover_email_event_is_acked_not_dead_lettered(saga: Saga) -> None:
    """What a version from before publishes while a rollout replaces it changes nothing."""
    product = await saga.new_product(stock=5)
    order = await saga.place(product, key=uuid.uuid4().hex)
    await saga.wait_status(order.id, order_pb2.ORDER_STATUS_PAID)
    before = handled("notification.sent")
    leftover = events_pb2.NotificationSent(
        notification_id=uuid.uuid4().hex, order_id=order.id, event_type="order.created"
    )
    await publish_event(
        saga, "notification.sent", leftover.SerializeToString(), uuid.uuid4().hex, order.id
    )

    async def acked() -> bool:
        return handled("notification.sent") > before

    await eventually(acked, message="the leftover event acked")
    assert await dead_letters(saga, "order_service") == 0
    timeline = await timeline_of(saga, order.id, saga.customer)
    assert "notification.sent" not in [event.type for event in timeline.events]


async def test_the_timeline_is_unavailable_while_the_notification_service_is(
    saga_base: Saga,
) -> None:
    saga = saga_base
    # Where no notification service listens: its emails cannot be known.
    saga.addresses["notification_service"] = f"127.0.0.1:{free_port()}"
    await saga.start("order_service", ORDER, rpc_timeout_seconds=2)
    await saga.start("payment_service", PAYMENT)
    product = await saga.new_product(stock=5)
    order = await saga.place(product, key=uuid.uuid4().hex)

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await timeline_of(saga, order.id, saga.customer)
    assert failed.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    assert "notification service" in (failed.value.details() or "")
    # The order itself is still read without it.
    assert await saga.order_status(order.id) in (
        order_pb2.ORDER_STATUS_PENDING,
        order_pb2.ORDER_STATUS_PAID,
    )
