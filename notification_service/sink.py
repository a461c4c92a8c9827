"""A local SMTP sink for `make run`: accepts every email, keeps it under var/mail, logs it.

`python -m notification_service.sink [--port 1025]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import logging
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from meshkit.logging import configure_logging
from meshkit.process import follow_launcher
from meshkit.settings import VAR_DIR, CommonSettings, load_settings

logger = logging.getLogger("notification_service.sink")


class KeepMail:
    """aiosmtpd handler: writes each message to a file and logs who got what."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.directory / f"{time.time_ns()}.eml"
        path.write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        logger.info(
            "mail kept",
            extra={"to": envelope.rcpt_tos, "subject": message["Subject"], "file": str(path)},
        )
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path) -> None:
    controller = Controller(KeepMail(directory), hostname=host, port=port)
    controller.start()
    logger.info("SMTP sink listening on %s:%d, keeping mail in %s", host, port, directory)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--directory", type=Path, default=VAR_DIR / "mail")
    args = parser.parse_args()
    follow_launcher()
    settings = load_settings(CommonSettings)
    configure_logging("mail_sink", settings.log_level, settings.log_format)
    # aiosmtpd logs every connection at INFO, health probes' included; kept mail is logged above.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.directory))


if __name__ == "__main__":
    main()
