"""The AMQP connection: one robust connection per process, and a clear error without a broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aio_pika
from aio_pika import ExchangeType
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from meshkit.readiness import Dependency

logger = logging.getLogger(__name__)

EVENTS_EXCHANGE = "ecommerce.events"

# Who consumes what. Every service declares all of it at start-up, so an event published
# before its consumer ever ran waits in that consumer's queue instead of being unroutable.
# Each consumer's own handlers are declared with its `meshkit.messaging.subscriptions.Subscriptions`,
# and it refuses to start unless they take exactly the event types listed here.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "payment_service": ("order.created", "order.cancelled"),
    "order_service": (
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
        # Retired: no longer published, acked while a rollout's older publishers remain.
        "notification.sent",
    ),
    "notification_service": (
        "order.created",
        "order.confirmed",
        "order.cancelled",
        "order.shipped",
        "payment.failed",
        "payment.refunded",
    ),
}
# RabbitMQ before 4.0 sets no delivery limit on quorum queues: a poison message would loop.
DELIVERY_LIMIT = 5
# The waits of a message whose handler found a dependency down, in seconds: one retry queue
# each, whose messages expire back into the consumer's queue. A queue per wait, not a wait
# per message: RabbitMQ expires only the message at a queue's head, so one long wait would
# hold up the shorter ones behind it.
RETRY_DELAYS_SECONDS: tuple[float, ...] = (1, 4, 16, 60)


@dataclass(frozen=True)
class Topology:
    """Names of the exchange and queues. A namespace keeps test runs (or tenants) apart."""

    namespace: str = ""
    retry_delays_seconds: tuple[float, ...] = RETRY_DELAYS_SECONDS

    def _name(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def exchange(self) -> str:
        return self._name(EVENTS_EXCHANGE)

    def queue(self, consumer: str) -> str:
        return self._name(f"{consumer}.events")

    def dead_letter_exchange(self, consumer: str) -> str:
        return self._name(f"{consumer}.dlx")

    def dead_letter_queue(self, consumer: str) -> str:
        return self._name(f"{consumer}.events.dead")

    def retry_queue(self, consumer: str, delay_seconds: float) -> str:
        return self._name(f"{consumer}.events.retry.{delay_seconds:g}s")

    async def declare_exchange(self, channel: AbstractChannel) -> AbstractExchange:
        return await channel.declare_exchange(self.exchange, ExchangeType.TOPIC, durable=True)

    async def declare_consumer_queue(
        self, channel: AbstractChannel, consumer: str, routing_keys: Iterable[str] | None = None
    ) -> AbstractQueue:
        """The consumer's quorum queue, bound to its keys, with its dead-letter exchange and queue.

        The keys are the consumer's own event types when it declares its queue to consume it,
        and otherwise its keys in `CONSUMERS`.
        """
        exchange = await self.declare_exchange(channel)
        dead_letters = await channel.declare_exchange(
            self.dead_letter_exchange(consumer), ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            self.dead_letter_queue(consumer), durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead_letters)
        queue = await channel.declare_queue(
            self.queue(consumer),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letter_exchange(consumer),
                # At-least-once dead-lettering: a message is not dropped on its way to the DLQ.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        for key in CONSUMERS[consumer] if routing_keys is None else routing_keys:
            await queue.bind(exchange, routing_key=key)
        for delay in self.retry_delays_seconds:
            await self._declare_retry_queue(channel, consumer, delay)
        return queue

    async def _declare_retry_queue(
        self, channel: AbstractChannel, consumer: str, delay_seconds: float
    ) -> AbstractQueue:
        """Where a message waits `delay_seconds` before it is delivered to `consumer` again:
        expired, it goes back through the default exchange to the consumer's queue alone,
        not to every queue bound to its event type."""
        return await channel.declare_queue(
            self.retry_queue(consumer, delay_seconds),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": round(delay_seconds * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue(consumer),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    async def declare_all(self, connection: AbstractRobustConnection) -> None:
        """Declare the exchange and every consumer's queues; idempotent."""
        channel = await connection.channel()
        try:
            await self.declare_exchange(channel)
            for consumer in CONSUMERS:
                await self.declare_consumer_queue(channel, consumer)
        finally:
            await channel.close()

    async def delete_all(self, connection: AbstractConnection) -> None:
        """Remove every queue and exchange of this namespace (test clean-up)."""
        channel = await connection.channel()
        try:
            for consumer in CONSUMERS:
                await channel.queue_delete(self.queue(consumer))
                await channel.queue_delete(self.dead_letter_queue(consumer))
                for delay in self.retry_delays_seconds:
                    await channel.queue_delete(self.retry_queue(consumer, delay))
                await channel.exchange_delete(self.dead_letter_exchange(consumer))
            await channel.exchange_delete(self.exchange)
        finally:
            await channel.close()


# What the broker adds to a message as it delivers or dead-letters it.
_BROKER_HEADERS = frozenset(
    {
        "x-delivery-count",
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def fresh_copy(
    message: AbstractIncomingMessage,
    *,
    drop: Iterable[str] = (),
    add: Mapping[str, str] | None = None,
) -> aio_pika.Message:
    """`message` to publish again, persistent, with its id, correlation, type and headers,
    less what the broker added (the copy starts a fresh count) and `drop`, plus `add`."""
    dropped = _BROKER_HEADERS | frozenset(drop)
    headers = {
        name: value for name, value in (message.headers or {}).items() if name not in dropped
    }
    headers.update(add or {})
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


class BrokerUnavailable(SystemExit):
    """RabbitMQ cannot be reached at start-up; uncaught, it ends the process with the fix."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(
            f"RabbitMQ is not reachable at {redact(url)} ({reason}). "
            "Start it (`rabbitmq-server -detached`, or `sudo systemctl start rabbitmq-server`; "
            "install it with `sudo apt-get install rabbitmq-server`) or point AMQP_URL at a "
            "running broker."
        )


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def connect(url: str, *, name: str, timeout: float = 5.0) -> AbstractRobustConnection:
    """Connect once, failing fast with BrokerUnavailable; later drops reconnect by themselves,
    told as one warning when the connection is lost and one when it is back."""
    try:
        connection = await aio_pika.connect_robust(
            url, timeout=timeout, client_properties={"connection_name": name}
        )
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        raise BrokerUnavailable(url, str(exc) or type(exc).__name__) from None
    logger.info("connected to RabbitMQ", extra={"amqp_url": redact(url)})
    quiet_broker_noise()
    _ConnectionWatch(connection, redact(url))
    return connection


class _ConnectionWatch:
    """Says once that the connection was lost, and once that it is back, with for how long."""

    def __init__(self, connection: AbstractRobustConnection, url: str) -> None:
        self.connection = connection
        self.url = url
        self.lost_at: float | None = None
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)

    def _lost(self, sender: object, error: BaseException | None) -> None:
        if self.lost_at is not None or error is None or _closing(self.connection):
            return  # already said, or closed on purpose
        self.lost_at = time.monotonic()
        logger.warning(
            "lost the connection to RabbitMQ at %s (%s); reconnecting",
            self.url,
            _describe(error),
        )

    def _back(self, sender: object) -> None:
        if self.lost_at is None:
            return
        logger.warning("connected to RabbitMQ again after %.1fs", time.monotonic() - self.lost_at)
        self.lost_at = None


def _closing(connection: AbstractRobustConnection) -> bool:
    # aio-pika runs the close callbacks before it marks a connection closed on purpose.
    return bool(getattr(connection, "close_called", False)) or connection.is_closed


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class _BrokerNoise(logging.Filter):
    """What aio-pika and aiormq log about a connection the broker dropped: a traceback from the
    frame reader, an error from each channel's close callback, an error for the broker's own
    close, a warning at every attempt to reconnect. `_ConnectionWatch` says it once each way
    instead. A failed attempt to reconnect still goes through once a minute, with its reason,
    so that a broker refusing for good (new credentials, say) is not silent; anything else they
    log goes through."""

    _CONNECTION_LOST = (
        "Cancelling cause reader exited abnormally",
        'Unexpected connection close from remote "%s", ',
        "error when creating transport: %r",
    )
    _RECONNECTING = (
        'Connection attempt to "%s" failed: %s. ',
        'Connection attempt to "%s" cancelled. ',
    )
    # What a channel's close callback raises when it finds its connection gone; a
    # RuntimeError only when it says the connection is closed.
    _CLOSED = frozenset({"ChannelInvalidStateError", "ConnectionClosed", "AMQPConnectionError"})
    RECONNECT_REPORT_SECONDS = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._reported = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self._CONNECTION_LOST):
            return False
        if message.startswith(self._RECONNECTING):
            now = time.monotonic()
            if now - self._reported < self.RECONNECT_REPORT_SECONDS:
                return False
            self._reported = now
            return True
        # A channel's close callback finding its connection closed (`RobustChannel._on_close`).
        if not (
            message.startswith("Callback %r error")
            and isinstance(record.args, tuple)
            and len(record.args) == 3
        ):
            return True
        kind, text = record.args[1], str(record.args[2]).lower()
        return not (kind in self._CLOSED or (kind == "RuntimeError" and "closed" in text))


_NOISY_LOGGERS = ("aiormq.connection", "aio_pika.robust_connection", "aio_pika.tools")


def quiet_broker_noise() -> None:
    """Filter `_BrokerNoise` out of the broker libraries' loggers; once per process."""
    for name in _NOISY_LOGGERS:
        library = logging.getLogger(name)
        if not any(isinstance(existing, _BrokerNoise) for existing in library.filters):
            library.addFilter(_BrokerNoise())


async def check_broker(url: str, timeout: float = 3.0) -> None:
    """Raise BrokerUnavailable unless a broker answers at `url`."""
    try:
        connection = await aio_pika.connect(url, timeout=timeout)
    except (TimeoutError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
        raise BrokerUnavailable(url, str(exc) or type(exc).__name__) from None
    await connection.close()


class BrokerOutOfReach(ConnectionError):
    """The robust connection is closed, or reconnecting after the broker dropped it."""


def readiness(connection: AbstractRobustConnection) -> Dependency:
    """The broker as a dependency of the service's readiness (`meshkit.readiness`).

    The check reads the connection's state and sends nothing: the robust connection notices a
    dropped connection at once, and a silent one by its heartbeats, then reconnects by itself;
    until it is connected again, the relay and the consumers are idle.
    """

    async def check() -> None:
        if connection.is_closed:
            raise BrokerOutOfReach("the connection is closed")
        if not connection.connected.is_set():
            raise BrokerOutOfReach("reconnecting")

    return Dependency("broker", check)
