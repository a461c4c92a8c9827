"""The AMQP connection: one robust connection per process, and a clear error without a broker."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection

logger = logging.getLogger(__name__)

EVENTS_EXCHANGE = "ecommerce.events"


class BrokerUnavailable(SystemExit):
    """RabbitMQ cannot be reached at start-up; uncaught, it ends the process with the fix."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            f"RabbitMQ is not reachable at {redact(url)} ({reason}). "
            "Start it (`rabbitmq-server -detached`, or `sudo systemctl start rabbitmq-server`; "
            "install it with `sudo apt-get install rabbitmq-server`) or point AMQP_URL at a running broker."
        )


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def connect(url: str, *, name: str, timeout: float = 5.0) -> AbstractRobustConnection:
    """Connect once, failing fast with BrokerUnavailable; later drops reconnect by themselves."""
    try:
        connection = await aio_pika.connect_robust(
            url, timeout=timeout, client_properties={"connection_name": name}
        )
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        raise BrokerUnavailable(url, str(exc) or type(exc).__name__) from None
    logger.info("connected to RabbitMQ", extra={"amqp_url": redact(url)})
    return connection


async def check_broker(url: str, timeout: float = 3.0) -> None:
    """Raise BrokerUnavailable unless a broker answers at `url`."""
    try:
        connection = await aio_pika.connect(url, timeout=timeout)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        raise BrokerUnavailable(url, str(exc) or type(exc).__name__) from None
    await connection.close()
