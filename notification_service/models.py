"""Tables of the notification service's own database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.data import UTCDateTime, new_metadata, utcnow
from meshkit.messaging import inbox_table, outbox_table


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata
# Unused since an order's timeline asks for its emails; kept until no version that
# publishes through it can run, for a rollout replaces those while this one starts.
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)


class NotificationStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Notification(Base):
    """One email about one event; kept whatever happens to its delivery."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        # An order's emails, which its timeline shows (`GetOrderNotifications`).
        Index("ix_notifications_order_id_created_at", "order_id", "created_at", "id"),
        # The mailer's work queue: due, unsent notifications.
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The event it is about: one notification per event, however often it is delivered.
    source_message_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(32), default="")
    event_type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16), default="EMAIL")
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING)
    failure_reason: Mapped[str] = mapped_column(String(500), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The W3C trace context of the event that made it (JSON; empty while tracing is off): the
    # mailer sends it in the same trace.
    trace_context: Mapped[str] = mapped_column(String(512), default="", server_default="")
