"""An SMTP server that accepts and counts every email: the notification service's relay."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller

from localmesh.launcher import free_port


class MailSink:
    """Runs in a thread of the benchmark; keeps nothing but counts."""

    def __init__(self) -> None:
        self.port = free_port()  # aiosmtpd does not report the port it bound
        self.received = 0
        # Each SMTP session opens with EHLO (the mailer's client always sends it).
        self.sessions = 0
        self._controller: Controller | None = None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        # A handler of EHLO takes over what aiosmtpd does without one: remembering the
        # client's name, without which every MAIL is refused ("send HELO first").
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        return "250 OK"

    def start(self) -> MailSink:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
