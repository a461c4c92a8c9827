"""A notification as the domain sees it: a plain record, read and written through the repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One email about one event: the columns of `models.Notification`."""

    id: str
    source_message_id: str
    user_id: str
    order_id: str
    event_type: str
    channel: str
    recipient: str
    subject: str
    body_text: str
    body_html: str
    status: str
    failure_reason: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    trace_context: str
