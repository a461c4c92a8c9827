"""What the broker libraries' noise filter lets through, and a connection closed on purpose
saying nothing of a loss."""

from __future__ import annotations

import logging

import pytest

from meshkit.messaging import amqp
from tests.conftest import AMQP_URL


def _record(name: str, msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_the_filter_drops_connection_noise_and_keeps_the_rest() -> None:
    noise = amqp._BrokerNoise()
    assert not noise.filter(
        _record("aiormq.connection", "Cancelling cause reader exited abnormally")
    )
    closed = _record(
        "aio_pika.tools", "Callback %r error: %s: %s", "cb", "RuntimeError", "<Connection> closed"
    )
    assert not noise.filter(closed)
    gone = _record(
        "aio_pika.tools",
        "Callback %r error: %s: %s",
        "cb",
        "ChannelInvalidStateError",
        "No active transport in channel",
    )
    assert not noise.filter(gone)
    # A callback failing for another reason is somebody's bug: it goes through.
    other = _record("aio_pika.tools", "Callback %r error: %s: %s", "cb", "KeyError", "'x'")
    assert noise.filter(other)
    # Attempts to reconnect: the first said, then once a minute at most.
    attempt = 'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.'
    assert noise.filter(_record("aio_pika.robust_connection", attempt, "amqp", "refused", 5))
    assert not noise.filter(_record("aio_pika.robust_connection", attempt, "amqp", "refused", 5))
    noise._reported -= noise.RECONNECT_REPORT_SECONDS
    assert noise.filter(_record("aio_pika.robust_connection", attempt, "amqp", "refused", 5))
    # A reconnection that fails for another reason than the connection is an error to see.
    failed = "Reconnect attempt failed %s due to %s: %s. Retrying after %r seconds."
    assert noise.filter(_record("aio_pika.robust_connection", failed, "c", "X", "y", 5))


async def test_a_connection_closed_on_purpose_reports_no_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="meshkit.messaging.amqp")
    connection = await amqp.connect(AMQP_URL, name="test")
    await connection.close()
    said = [record.getMessage() for record in caplog.records]
    assert said == ["connected to RabbitMQ"], said
