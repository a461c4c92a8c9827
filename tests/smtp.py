"""A real SMTP server in-process (aiosmtpd) that tests can read, stop and restart."""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port

# Recipients the server refuses, as a relay refuses an unknown mailbox.
REFUSED_PREFIX = "refused"


@dataclass(frozen=True)
class ReceivedMail:
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""

    def html(self) -> str:
        body = self.message.get_body(preferencelist=("html",))
        return body.get_content() if body is not None else ""


class SmtpServer:
    """Keeps every message it accepts; `stop()` then `start()` on the same port is an outage."""

    def __init__(self, port: int | None = None, *, smtputf8: bool = False) -> None:
        # aiosmtpd does not report the port it bound: pick a free one first.
        self.port = port or free_port()
        # Whether it takes internationalised mailboxes (RFC 6531).
        self.smtputf8 = smtputf8
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._greetings = 0
        self._controller: Controller | None = None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self._greetings += 1
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._received.append(ReceivedMail(tuple(envelope.rcpt_tos), message))
        return "250 OK"

    def start(self) -> SmtpServer:
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith(REFUSED_PREFIX):
            return "550 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @property
    def connections(self) -> int:
        """How many client connections were opened so far (each greets once with EHLO)."""
        with self._lock:
            return self._greetings

    def received(self, to: str | None = None) -> list[ReceivedMail]:
        with self._lock:
            mails = list(self._received)
        return [mail for mail in mails if to is None or to in mail.recipients]
