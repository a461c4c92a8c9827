"""Sending email over SMTP (host, port, TLS and credentials from configuration)."""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from notification_service.settings import NotificationSettings


class SmtpMailer:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self.sender = _encoded_address(settings.mail_from)
        # The envelope's sender; its domain names the messages it sends.
        self.sender_address = parseaddr(settings.mail_from)[1]
        self.domain = self.sender_address.rpartition("@")[2] or "localhost"

    def message_id(self, notification_id: str) -> str:
        """The Message-ID of a notification's email: the same every time it is sent, so that
        a receiver that has it already drops a second copy (`Notifications.deliver_due`)."""
        return f"<{notification_id}@{self.domain}>"

    def message(self, recipient: str, subject: str, text: str, html: str, message_id: str) -> bytes:
        """A text and HTML email (multipart/alternative), as the bytes an SMTP relay takes.

        Written out here rather than built as `email.mime` objects and flattened: flattening
        a message costs several times what writing these few fixed lines does, and was the
        largest part of what an email cost the notification service. Non-ASCII subjects are
        encoded words, bodies UTF-8 in base64, lines end in CRLF.
        """
        if any("\r" in value or "\n" in value for value in (recipient, subject, message_id)):
            # A line break would end the header and start another: refused, not sent.
            raise ValueError("a line break in a recipient, subject or message id")
        boundary = f"_mesh_{secrets.token_hex(16)}"  # "_" is never in base64: no collision
        if not subject.isascii():
            subject = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        return b"".join(
            (
                (
                    f"From: {self.sender}\r\n"
                    f"To: {recipient}\r\n"
                    f"Subject: {subject}\r\n"
                    f"Date: {formatdate(usegmt=True)}\r\n"
                    f"Message-ID: {message_id}\r\n"
                    "MIME-Version: 1.0\r\n"
                    f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
                    "\r\n"
                ).encode(),  # ASCII but for an internationalised recipient
                _part(boundary, "plain", text),
                _part(boundary, "html", html),
                f"--{boundary}--\r\n".encode("ascii"),
            )
        )

    def client(self) -> aiosmtplib.SMTP:
        """A client for the configured relay, not yet connected; it signs in on connecting."""
        password = self.settings.smtp_password
        return aiosmtplib.SMTP(
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            use_tls=self.settings.smtp_tls,
            start_tls=self.settings.smtp_starttls,
            username=self.settings.smtp_username,
            password=password.get_secret_value() if password else None,
            timeout=self.settings.smtp_timeout_seconds,
        )

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[MailConnection]:
        """One SMTP connection for many emails: opened by the first send, closed on exit.

        A connection (TCP, greeting, EHLO, maybe TLS and a login) per email cost more than the
        email itself, and relays throttle clients that open many.
        """
        connection = MailConnection(
            self, check_after_seconds=self.settings.smtp_check_after_seconds
        )
        try:
            yield connection
        finally:
            await connection.close()


def _part(boundary: str, subtype: str, body: str) -> bytes:
    """One body part of a multipart message: UTF-8, in base64 lines of 76."""
    encoded = base64.encodebytes(body.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f"--{boundary}\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
    ).encode("ascii") + encoded


def _encoded_address(mailbox: str) -> str:
    """`Name <address>` with a non-ASCII name as an encoded word, once, at start-up."""
    name, address = parseaddr(mailbox)
    return formataddr((name, address), charset="utf-8") if name else address


class MailConnection:
    """Sends over one SMTP connection, reconnecting once the relay has dropped it.

    A connection that sat idle is checked with a NOOP before its next email: a relay closes
    idle clients on its own schedule, and an email must not fail for that.
    """

    def __init__(self, mailer: SmtpMailer, *, check_after_seconds: float = 1.0) -> None:
        self.mailer = mailer
        self.check_after = check_after_seconds
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0

    @property
    def idle_seconds(self) -> float:
        return time.monotonic() - self._last_used if self._client is not None else 0.0

    async def send(
        self, recipient: str, subject: str, text: str, html: str, *, message_id: str
    ) -> None:
        message = self.mailer.message(recipient, subject, text, html, message_id)
        sender = self.mailer.sender_address
        # An internationalised mailbox needs a relay that takes SMTPUTF8; asked for, a relay
        # without it is refused before any command is sent.
        options = [] if recipient.isascii() and sender.isascii() else ["SMTPUTF8"]
        client = await self._open_client()
        try:
            await client.sendmail(sender, [recipient], message, mail_options=options)
            self._last_used = time.monotonic()
        except aiosmtplib.SMTPException as error:
            # Dropped or timed out (aiosmtplib's connection errors are OSErrors): the next
            # email starts afresh. A refused message (a 5xx or 4xx answer), or an option the
            # relay lacks, leaves the connection usable: no envelope is left open.
            if isinstance(error, OSError):
                self._drop(client)
            raise
        except BaseException:
            # Failed or cancelled mid-transaction: the connection's state is unknown.
            self._drop(client)
            raise

    def _drop(self, client: aiosmtplib.SMTP) -> None:
        client.close()
        self._client = None

    async def _open_client(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None and client.is_connected and self.idle_seconds >= self.check_after:
            try:
                await client.noop()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        if client is None or not client.is_connected:
            client = self._client = self.mailer.client()
            await client.connect()
            self._last_used = time.monotonic()
        return client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
