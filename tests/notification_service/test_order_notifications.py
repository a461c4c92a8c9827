"""An order's notifications, on each backend: oldest first, all of them for a service or an
admin, only their own for anyone else, and a clear error for a bad id or no caller."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from meshkit.context import Principal, Role
from meshkit.data import Database, utcnow
from meshkit.errors import InvalidArgument
from meshkit.identity import TokenMissing
from meshkit.ids import new_id
from notification_service.models import Notification, NotificationStatus, metadata
from notification_service.notifications import Notifications
from tests.conftest import DatabaseFactory


async def add(
    database: Database, *, order_id: str, user_id: str, event_type: str, minute: int
) -> str:
    now, notification_id = utcnow() + timedelta(minutes=minute), new_id()
    async with database.transaction() as session:
        session.add(
            Notification(
                id=notification_id,
                source_message_id=new_id(),
                user_id=user_id,
                order_id=order_id,
                event_type=event_type,
                recipient=f"{user_id}@example.com",
                subject=event_type,
                body_text="text",
                body_html="<p>html</p>",
                status=NotificationStatus.SENT,
                created_at=now,
                next_attempt_at=now,
                sent_at=now,
            )
        )
    return notification_id


def notifications_on(database: Database) -> Notifications:
    unused: Any = None  # reading needs none of the sending parts
    return Notifications(database, unused, unused, unused, unused, unused, lease_seconds=60)


def caller(subject: str, role: Role) -> Principal:
    return Principal(subject=subject, role=role, token="t")


async def test_an_orders_notifications_oldest_first_for_whom_may_see_them(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    order, other_order = new_id(), new_id()
    # Made in the order they were, by time, not in the order of their ids.
    confirmed = await add(
        database, order_id=order, user_id="ada", event_type="order.confirmed", minute=2
    )
    await add(database, order_id=other_order, user_id="ada", event_type="order.created", minute=0)
    created = await add(
        database, order_id=order, user_id="ada", event_type="order.created", minute=1
    )
    notifications = notifications_on(database)

    readers = (caller("ada", Role.CUSTOMER), caller("x", Role.ADMIN), caller("o", Role.SERVICE))
    for reader in readers:
        found = await notifications.of_order(reader, order)
        assert [n.id for n in found] == [created, confirmed], reader.role
    # Another customer learns nothing of it, not even that it exists.
    assert await notifications.of_order(caller("bob", Role.CUSTOMER), order) == []
    assert await notifications.of_order(caller("ada", Role.CUSTOMER), new_id()) == []


async def test_a_bad_order_id_or_no_caller_is_refused(
    database_on_each_backend: DatabaseFactory,
) -> None:
    notifications = notifications_on(await database_on_each_backend(metadata))
    with pytest.raises(InvalidArgument):
        await notifications.of_order(caller("ada", Role.CUSTOMER), "")
    with pytest.raises(TokenMissing):
        await notifications.of_order(None, new_id())  # type: ignore[arg-type]
