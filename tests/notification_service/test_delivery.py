"""A mailer pass, on each backend: a sent email is SENT; a refused one is retried with backoff,
then kept as FAILED with the reason after the last attempt. Each attempt is counted by its
outcome once the pass commits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.data import Database, utcnow
from meshkit.ids import new_id
from meshkit.settings import load_settings
from notification_service import notifications as delivery
from notification_service import repository
from notification_service.mailer import SmtpMailer
from notification_service.models import Notification, NotificationStatus, metadata
from notification_service.notifications import Notifications
from notification_service.records import NotificationRecord
from notification_service.settings import NotificationSettings
from notification_service.unit_of_work import NotificationUnitOfWork
from tests.conftest import DatabaseFactory
from tests.smtp import REFUSED_PREFIX, SmtpServer
from tests.support import eventually

MAX_ATTEMPTS = 3


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def notifications_of(database: Database, smtp: SmtpServer) -> Notifications:
    settings = load_settings(NotificationSettings, env_file=None, SMTP_PORT=smtp.port)
    unused: Any = None  # recipients, renderer, page tokens: a pass needs none of them
    return Notifications(
        database,
        lambda: NotificationUnitOfWork(database),
        unused,
        unused,
        SmtpMailer(settings),
        unused,
        retry_base_seconds=0.05,
        retry_max_seconds=0.05,
        max_attempts=MAX_ATTEMPTS,
    )


async def add_notification(database: Database, recipient: str) -> str:
    now, notification_id = utcnow(), new_id()
    async with database.transaction() as session:
        session.add(
            Notification(
                id=notification_id,
                source_message_id=new_id(),
                user_id="u1",
                order_id="o1",
                event_type="order.created",
                recipient=recipient,
                subject=f"To {recipient}",
                body_text="text",
                body_html="<p>html</p>",
                created_at=now,
                next_attempt_at=now,
            )
        )
    return notification_id


async def set_attempts(database: Database, notification_id: str, attempts: int) -> None:
    async with database.transaction() as session:
        row = await session.get(Notification, notification_id)
        assert row is not None
        row.attempts = attempts


def dying_after_the_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next pass claims, sends, then cannot save its outcomes (its sender "died"); the
    pass after it runs as usual."""
    original = repository.save_sent
    calls = 0

    async def dies_once(*args: Any, **kwargs: Any) -> set[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the pass could not commit")
        return await original(*args, **kwargs)

    monkeypatch.setattr(delivery, "save_sent", dies_once)


async def stored(database: Database, notification_id: str) -> Notification:
    async with database.session() as session:
        found = await session.get(Notification, notification_id)
    assert found is not None
    return found


async def test_a_pass_sends_what_is_due_and_records_each_outcome(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    kept = await add_notification(database, "kept@example.com")
    refused = await add_notification(database, f"{REFUSED_PREFIX}@example.com")
    before = utcnow()

    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 2

    sent = await stored(database, kept)
    assert (sent.status, sent.attempts, sent.failure_reason) == (NotificationStatus.SENT, 1, "")
    assert sent.sent_at is not None and sent.sent_at >= before
    retrying = await stored(database, refused)
    assert (retrying.status, retrying.attempts) == (NotificationStatus.PENDING, 1)
    assert "SMTPRecipientsRefused" in retrying.failure_reason
    assert retrying.next_attempt_at > before and retrying.sent_at is None
    assert [mail.subject for mail in smtp.received()] == ["To kept@example.com"]
    # Named after the notification: a second copy would be the same message.
    (mail,) = smtp.received()
    assert (
        mail.message["Message-ID"]
        == notifications.mailer.message_id(kept)
        == (f"<{kept}@{notifications.mailer.domain}>")
    )


async def test_after_the_last_attempt_a_notification_is_kept_as_failed(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    refused = await add_notification(database, f"{REFUSED_PREFIX}@example.com")

    async def given_up() -> bool:
        async with notifications.mailer.connection() as connection:
            await notifications.deliver_due(connection)
        return (await stored(database, refused)).status == NotificationStatus.FAILED

    await eventually(given_up, timeout=10, message="the notification given up on")
    failed = await stored(database, refused)
    assert failed.attempts == MAX_ATTEMPTS
    assert "SMTPRecipientsRefused" in failed.failure_reason
    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 0  # never tried again


def emails() -> dict[str, float]:
    """How many attempts to send an email had each outcome, so far."""
    return {
        outcome: REGISTRY.get_sample_value("emails_total", {"outcome": outcome}) or 0.0
        for outcome in ("sent", "retried", "failed")
    }


def counted_since(before: dict[str, float]) -> dict[str, float]:
    return {outcome: count - before[outcome] for outcome, count in emails().items()}


async def test_each_attempt_is_counted_by_its_outcome(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    await add_notification(database, "kept@example.com")
    refused = await add_notification(database, f"{REFUSED_PREFIX}@example.com")
    before = emails()

    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 2
    assert counted_since(before) == {"sent": 1, "retried": 1, "failed": 0}

    async def given_up() -> bool:
        async with notifications.mailer.connection() as connection:
            await notifications.deliver_due(connection)
        return (await stored(database, refused)).status == NotificationStatus.FAILED

    await eventually(given_up, timeout=10, message="the notification given up on")
    assert counted_since(before) == {"sent": 1, "retried": MAX_ATTEMPTS - 1, "failed": 1}


async def test_an_email_whose_outcome_was_not_saved_is_sent_again_as_the_same_message(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    notifications.lease_seconds = 0  # due again at once, not after the usual minute
    dying_after_the_claim(monkeypatch)
    kept = await add_notification(database, "kept@example.com")
    before = emails()

    async with notifications.mailer.connection() as connection:
        with pytest.raises(RuntimeError, match="could not commit"):
            await notifications.deliver_due(connection)

    # The email went out and its attempt was counted before it did; its outcome is unknown.
    assert len(smtp.received()) == 1
    claimed = await stored(database, kept)
    assert (claimed.status, claimed.attempts) == (NotificationStatus.PENDING, 1)
    assert counted_since(before) == {"sent": 0, "retried": 0, "failed": 0}
    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 1
    # Sent again, once, as the same message, and both attempts on record.
    first, second = smtp.received()
    assert first.message["Message-ID"] == second.message["Message-ID"]
    sent = await stored(database, kept)
    assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 2)
    assert counted_since(before) == {"sent": 1, "retried": 0, "failed": 0}


async def test_a_leased_notification_is_not_sent_again_before_its_lease_ends(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    dying_after_the_claim(monkeypatch)
    await add_notification(database, "kept@example.com")
    async with notifications.mailer.connection() as connection:
        with pytest.raises(RuntimeError, match="could not commit"):
            await notifications.deliver_due(connection)
    # Another replica's pass, within the lease (a minute): nothing is due.
    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 0
    assert len(smtp.received()) == 1


class CancelledOnSecondSend:
    """A connection whose second send is where the process is told to stop (a deploy)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sends = 0

    async def send(self, *args: Any, **kwargs: Any) -> None:
        self.sends += 1
        if self.sends == 2:
            raise asyncio.CancelledError
        await self.inner.send(*args, **kwargs)


async def test_a_pass_stopped_between_two_sends_saves_the_one_it_sent(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    first = await add_notification(database, "first@example.com")
    second = await add_notification(database, "second@example.com")

    async with notifications.mailer.connection() as connection:
        with pytest.raises(asyncio.CancelledError):
            await notifications.deliver_due(CancelledOnSecondSend(connection))  # type: ignore[arg-type]

    # Sent, and saved as sent: a restart does not send it again.
    sent = await stored(database, first)
    assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 1)
    # Claimed, its attempt counted, not sent: due again once its lease is over.
    waiting = await stored(database, second)
    assert (waiting.status, waiting.attempts) == (NotificationStatus.PENDING, 1)
    assert waiting.next_attempt_at > utcnow()
    assert [mail.subject for mail in smtp.received()] == ["To first@example.com"]


async def test_an_outcome_saved_after_another_pass_claimed_it_again_is_not_kept(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    first = await add_notification(database, "first@example.com")
    kept = await add_notification(database, "kept@example.com")
    last = await add_notification(database, "last@example.com")
    before = emails()
    original = repository.save_sent

    async def claimed_again_first(*args: Any, **kwargs: Any) -> set[str]:
        # This pass's lease ran out while it sent: another pass claimed one notification.
        await set_attempts(database, kept, 2)
        return await original(*args, **kwargs)

    monkeypatch.setattr(delivery, "save_sent", claimed_again_first)
    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 3

    # The later claim's pass owns the outcome: this one did not overwrite it...
    row = await stored(database, kept)
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 2)
    # ...and saved those of the others, which no one claimed since.
    for other in (first, last):
        row = await stored(database, other)
        assert (row.status, row.attempts) == (NotificationStatus.SENT, 1)
    assert counted_since(before) == {"sent": 2, "retried": 0, "failed": 0}


async def test_a_notification_past_its_last_attempt_of_unknown_outcome_is_given_up(
    database_on_each_backend: DatabaseFactory, smtp: SmtpServer
) -> None:
    database = await database_on_each_backend(metadata)
    notifications = notifications_of(database, smtp)
    stuck = await add_notification(database, "stuck@example.com")
    # Each attempt claimed, its sender dying before the outcome.
    await set_attempts(database, stuck, MAX_ATTEMPTS)

    async with notifications.mailer.connection() as connection:
        assert await notifications.deliver_due(connection) == 0
    failed = await stored(database, stuck)
    assert (failed.status, failed.attempts) == (NotificationStatus.FAILED, MAX_ATTEMPTS)
    assert smtp.received() == []

    # The pass that claimed its last attempt, long ago, saves its outcome only now: too late.
    columns = Notification.__table__.columns
    stale = NotificationRecord(**{column.key: getattr(failed, column.key) for column in columns})
    assert await repository.save_sent(database, [stale], utcnow()) == set()
    row = await stored(database, stuck)
    assert (row.status, row.sent_at) == (NotificationStatus.FAILED, None)


async def test_a_database_outage_is_a_few_warnings_then_mail_goes_again(
    postgres_url: str, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notification_service.notifications")
    async with Database(postgres_url) as setup, setup.engine.begin() as tables:
        await tables.run_sync(metadata.create_all)
    url = make_url(postgres_url)
    async with FaultyProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = str(url.set(host="127.0.0.1", port=proxy.port))
        async with Database(through) as database:
            notifications = notifications_of(database, smtp)
            notifications.poll_seconds = 0.05
            proxy.set_mode(Mode.RESET)
            mailer = asyncio.create_task(notifications.run_mailer())
            try:

                async def failed_often() -> bool:
                    return sum(_failed_pass(record) for record in caplog.records) >= 8

                await eventually(failed_often, message="eight passes failed")
                proxy.set_mode(Mode.FORWARD)
                sent = await add_notification(database, "back@example.com")
                notifications.due.set()

                async def delivered() -> bool:
                    return (await stored(database, sent)).status == NotificationStatus.SENT

                await eventually(delivered, timeout=20, message="the email sent")
            finally:
                mailer.cancel()
                await asyncio.gather(mailer, return_exceptions=True)
    said = [record for record in caplog.records if record.levelno >= logging.WARNING]
    # No traceback, no ERROR: an outage, told at the 1st, 2nd, 4th, 8th... failure.
    assert not [record for record in said if record.exc_info or record.levelno >= logging.ERROR]
    warned = [record for record in said if _failed_pass(record)]
    failed = sum(_failed_pass(record) for record in caplog.records)
    assert len(warned) == failed.bit_length(), (len(warned), failed)
    assert any(record.getMessage().startswith("mailer passing again") for record in said)


def _failed_pass(record: logging.LogRecord) -> bool:
    return record.getMessage().startswith("mailer pass failed")
