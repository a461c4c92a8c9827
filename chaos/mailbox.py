"""An SMTP server that keeps, of every email it accepts, its recipient, subject and order."""

from __future__ import annotations

import email
import email.policy
import re
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from localmesh.launcher import free_port

# Every email about an order ends with this line (notification_service/templates/*.txt).
_ORDER_LINE = re.compile(r"^Order (\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Mail:
    message_id: str
    recipient: str
    subject: str
    # The order the email is about, read from its text; empty for one about no order.
    order_id: str


def read_mail(content: bytes, recipients: list[str]) -> list[Mail]:
    """One `Mail` per recipient of a message as it came over SMTP."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    found = _ORDER_LINE.search(text)
    return [
        Mail(
            message_id=str(message["Message-ID"] or ""),
            recipient=recipient,
            subject=str(message["Subject"] or ""),
            order_id=found.group(1) if found else "",
        )
        for recipient in recipients
    ]


class Mailbox:
    """Runs in a thread of its own (aiosmtpd's controller); read it from any thread."""

    def __init__(self) -> None:
        self.port = free_port()  # aiosmtpd does not report the port it bound
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received = read_mail(envelope.content, list(envelope.rcpt_tos))
        with self._lock:
            self._mails.extend(received)
        return "250 OK"

    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def start(self) -> Mailbox:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
