"""Sending email over SMTP (host, port, TLS and credentials from configuration)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from notification_service.settings import NotificationSettings


class SmtpMailer:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    def message(self, recipient: str, subject: str, text: str, html: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="ecommerce-mesh.local")
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

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
        """One SMTP connection for several emails: opened by the first send, closed on exit.

        A connection (TCP, greeting, EHLO, maybe TLS and a login) per email cost more than the
        email itself, and relays throttle clients that open many.
        """
        connection = MailConnection(self)
        try:
            yield connection
        finally:
            await connection.close()


class MailConnection:
    """Sends over one SMTP connection, reconnecting once the relay has dropped it."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, recipient: str, subject: str, text: str, html: str) -> None:
        message = self.mailer.message(recipient, subject, text, html)
        if self._client is None or not self._client.is_connected:
            self._client = self.mailer.client()
            await self._client.connect()
        try:
            await self._client.send_message(message)
        except OSError:
            # Dropped, timed out, refused (aiosmtplib's connection errors are OSErrors): the
            # next email starts afresh. A refused message (a 5xx or 4xx
            # answer) leaves the connection usable: aiosmtplib has reset the envelope.
            self._client.close()
            self._client = None
            raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
