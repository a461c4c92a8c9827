"""The mailer sends a pass's emails over one SMTP connection, and survives losing it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import aiosmtplib
import pytest

from meshkit.settings import load_settings
from notification_service.mailer import SmtpMailer
from notification_service.settings import NotificationSettings
from tests.smtp import REFUSED_PREFIX, SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _mailer(smtp: SmtpServer) -> SmtpMailer:
    settings = load_settings(NotificationSettings, env_file=None, SMTP_PORT=smtp.port)
    return SmtpMailer(settings)


async def test_emails_of_one_pass_share_one_connection(smtp: SmtpServer) -> None:
    async with _mailer(smtp).connection() as connection:
        for index in range(3):
            await connection.send(
                f"c{index}@example.com",
                f"Order {index}",
                "text",
                "<p>html</p>",
                message_id=f"<c{index}@example.com>",
            )
    assert [mail.subject for mail in smtp.received()] == ["Order 0", "Order 1", "Order 2"]
    assert smtp.received("c1@example.com")[0].html().strip() == "<p>html</p>"
    assert smtp.connections == 1


async def test_a_refused_recipient_fails_alone(smtp: SmtpServer) -> None:
    async with _mailer(smtp).connection() as connection:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await connection.send(
                f"{REFUSED_PREFIX}@example.com",
                "Lost",
                "text",
                "html",
                message_id="<t2@example.com>",
            )
        await connection.send(
            "kept@example.com", "Kept", "text", "html", message_id="<t3@example.com>"
        )
    assert [mail.subject for mail in smtp.received()] == ["Kept"]
    assert smtp.connections == 1


async def test_a_dropped_connection_fails_one_email_and_the_next_reconnects(
    smtp: SmtpServer,
) -> None:
    async with _mailer(smtp).connection() as connection:
        await connection.send(
            "first@example.com", "First", "text", "html", message_id="<t4@example.com>"
        )
        smtp.stop()  # an outage: the relay goes away with the connection
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await connection.send(
                "second@example.com", "Second", "text", "html", message_id="<t5@example.com>"
            )
        smtp.start()
        await connection.send(
            "third@example.com", "Third", "text", "html", message_id="<t6@example.com>"
        )
    assert [mail.subject for mail in smtp.received()] == ["First", "Third"]
    assert smtp.connections == 2


async def test_empty_credentials_send_without_a_login(smtp: SmtpServer) -> None:
    # Compose and Kubernetes pass an unset SMTP_USERNAME as "": that is no login, not an
    # empty one the relay (which offers no AUTH) would refuse.
    settings = load_settings(
        NotificationSettings, env_file=None, SMTP_PORT=smtp.port, SMTP_USERNAME="", SMTP_PASSWORD=""
    )
    assert settings.smtp_username is None and settings.smtp_password is None
    async with SmtpMailer(settings).connection() as connection:
        await connection.send(
            "plain@example.com", "No login", "text", "<p>html</p>", message_id="<t7@example.com>"
        )
    assert [mail.subject for mail in smtp.received("plain@example.com")] == ["No login"]


async def test_nothing_sent_opens_no_connection(smtp: SmtpServer) -> None:
    async with _mailer(smtp).connection():
        pass
    assert smtp.connections == 0


async def test_non_ascii_subject_sender_and_bodies_arrive_intact(smtp: SmtpServer) -> None:
    settings = load_settings(
        NotificationSettings,
        env_file=None,
        SMTP_PORT=smtp.port,
        MAIL_FROM="Boutique Élodie <shop@example.com>",
    )
    async with SmtpMailer(settings).connection() as connection:
        await connection.send(
            "zoe@example.com",
            "Commande confirmée — 19,99 €",
            "Bonjour Zoë,\nvotre commande est confirmée.",
            "<p>Bonjour Zoë,</p>",
            message_id="<n-1@example.com>",
        )
    [mail] = smtp.received("zoe@example.com")
    assert mail.subject == "Commande confirmée — 19,99 €"
    assert mail.message["From"].addresses[0].display_name == "Boutique Élodie"
    assert mail.message["From"].addresses[0].addr_spec == "shop@example.com"
    assert mail.text().strip() == "Bonjour Zoë,\nvotre commande est confirmée."
    assert mail.html().strip() == "<p>Bonjour Zoë,</p>"
    assert mail.message["Date"] is not None and mail.message["Message-ID"] is not None


def _mailer_checking_every_idle_moment(smtp: SmtpServer) -> SmtpMailer:
    settings = load_settings(
        NotificationSettings, env_file=None, SMTP_PORT=smtp.port, SMTP_CHECK_AFTER_SECONDS=0
    )
    return SmtpMailer(settings)


async def test_a_connection_outlives_its_pass_and_is_checked_before_reuse(
    smtp: SmtpServer,
) -> None:
    async with _mailer_checking_every_idle_moment(smtp).connection() as connection:
        await connection.send("a@example.com", "A", "text", "html", message_id="<t8@example.com>")
        assert connection.idle_seconds >= 0
        await connection.send(
            "b@example.com", "B", "text", "html", message_id="<t9@example.com>"
        )  # after a NOOP
    assert [mail.subject for mail in smtp.received()] == ["A", "B"]
    assert smtp.connections == 1


async def test_a_connection_the_relay_dropped_while_idle_is_replaced_without_a_failure(
    smtp: SmtpServer,
) -> None:
    async with _mailer_checking_every_idle_moment(smtp).connection() as connection:
        await connection.send("a@example.com", "A", "text", "html", message_id="<t10@example.com>")
        smtp.stop()  # the relay restarts while the connection sits idle
        smtp.start()
        await connection.send("b@example.com", "B", "text", "html", message_id="<t11@example.com>")
    assert [mail.subject for mail in smtp.received()] == ["A", "B"]
    assert smtp.connections == 2


async def test_a_closed_idle_connection_reopens_for_the_next_email(smtp: SmtpServer) -> None:
    async with _mailer(smtp).connection() as connection:
        await connection.send("a@example.com", "A", "text", "html", message_id="<t12@example.com>")
        await connection.close()  # what the mailer does after its keep-alive
        assert connection.idle_seconds == 0
        await connection.send("b@example.com", "B", "text", "html", message_id="<t13@example.com>")
    assert smtp.connections == 2


def test_a_message_reads_back_as_written_and_its_long_subject_folds() -> None:
    mailer = SmtpMailer(load_settings(NotificationSettings, env_file=None))
    subject = "Votre commande numéro 019af3c3c9e07f1a8b2c4d6e8f0a1b78 est confirmée — merci ! " * 2
    text, html = "Ligne é\n" * 40, "<p>é</p>" * 40
    raw = mailer.message("zoe@example.com", subject, text, html, "<n-2@example.com>")

    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == subject
    assert parsed["To"] == "zoe@example.com" and parsed["Message-ID"] == "<n-2@example.com>"
    assert parsed.get_content_type() == "multipart/alternative"
    plain, rich = parsed.iter_parts()
    assert (plain.get_content_type(), plain.get_content()) == ("text/plain", text)
    assert (rich.get_content_type(), rich.get_content()) == ("text/html", html)
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 78 for line in lines), max(lines, key=len)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # every line ends in CRLF


@pytest.mark.parametrize("field", ["recipient", "subject"])
def test_a_line_break_in_a_header_is_refused_not_sent(field: str) -> None:
    mailer = SmtpMailer(load_settings(NotificationSettings, env_file=None))
    values = {"recipient": "zoe@example.com", "subject": "Hello"}
    values[field] += "\r\nBcc: everyone@example.com"
    with pytest.raises(ValueError, match="line break"):
        mailer.message(values["recipient"], values["subject"], "text", "<p>html</p>", "<n@x>")


async def test_an_internationalised_mailbox_goes_where_the_relay_takes_it() -> None:
    without, with_utf8 = SmtpServer().start(), SmtpServer(smtputf8=True).start()
    try:
        # Refused before any command by a relay without SMTPUTF8, and the next email goes
        # on the same connection.
        async with _mailer(without).connection() as connection:
            with pytest.raises(aiosmtplib.SMTPNotSupported):
                await connection.send(
                    "zoë@example.com", "Hi", "text", "<p>html</p>", message_id="<a@x>"
                )
            await connection.send(
                "ann@example.com", "Hi", "text", "<p>html</p>", message_id="<b@x>"
            )
        assert [mail.recipients for mail in without.received()] == [("ann@example.com",)]
        assert without.connections == 1
        async with _mailer(with_utf8).connection() as connection:
            await connection.send(
                "zoë@example.com", "Hi", "text", "<p>html</p>", message_id="<c@x>"
            )
        [mail] = with_utf8.received()
        assert mail.recipients == ("zoë@example.com",)
        assert mail.message["To"] == "zoë@example.com"
    finally:
        without.stop()
        with_utf8.stop()
