"""Sending email over SMTP (host, port, TLS and credentials from configuration)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from notification_service.settings import NotificationSettings


class SmtpMailer:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    async def send(self, recipient: str, subject: str, text: str, html: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.mail_from
        message["To"] = recipient
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="ecommerce-mesh.local")
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        password = self.settings.smtp_password
        await aiosmtplib.send(
            message,
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            use_tls=self.settings.smtp_tls,
            start_tls=self.settings.smtp_starttls,
            username=self.settings.smtp_username,
            password=password.get_secret_value() if password else None,
            timeout=self.settings.smtp_timeout_seconds,
        )
