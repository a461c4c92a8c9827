"""Notifications recorded by a unit of work, on each backend: the emails of a batch of events
commit together with what the model leaves to its defaults; a second for one event does not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from meshkit.data import Database, IntegrityViolation, utcnow
from meshkit.ids import new_id
from notification_service.models import Notification, NotificationStatus, metadata
from notification_service.unit_of_work import NotificationUnitOfWork
from tests.conftest import DatabaseFactory


def email(source_message_id: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "source_message_id": source_message_id,
        "user_id": "u1",
        "event_type": "order.created",
        "recipient": "ada@example.com",
        "subject": "Your order",
        "body_text": "text",
        "body_html": "<p>html</p>",
        "created_at": now,
        "next_attempt_at": now,
    }


async def recorded(database: Database) -> list[Notification]:
    async with database.session() as session:
        found = await session.scalars(select(Notification).order_by(Notification.source_message_id))
    return list(found)


async def test_a_batch_of_emails_commits_together_with_the_defaults(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    async with NotificationUnitOfWork(database) as uow:
        uow.notifications.add(**email("m1"))
        uow.notifications.add(**email("m2"), order_id="o2", trace_context='{"traceparent": "x"}')
        assert await recorded(database) == []
        await uow.commit()
    first, second = await recorded(database)
    assert (first.source_message_id, first.order_id, first.trace_context) == ("m1", "", "")
    assert (second.order_id, second.trace_context) == ("o2", '{"traceparent": "x"}')
    for row in (first, second):
        assert (row.channel, row.status, row.attempts, row.failure_reason, row.sent_at) == (
            "EMAIL",
            NotificationStatus.PENDING,
            0,
            "",
            None,
        )


async def test_a_second_email_for_one_event_fails_the_commit(
    database_on_each_backend: DatabaseFactory,
) -> None:
    database = await database_on_each_backend(metadata)
    async with NotificationUnitOfWork(database) as uow:
        uow.notifications.add(**email("m1"))
        await uow.commit()
    async with NotificationUnitOfWork(database) as uow:
        uow.notifications.add(**email("m2"))
        uow.notifications.add(**email("m1"))
        with pytest.raises(IntegrityViolation):
            await uow.commit()
    assert [row.source_message_id for row in await recorded(database)] == ["m1"]
