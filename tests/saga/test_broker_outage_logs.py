"""A broker outage is told to operators as one warning when the connection is lost and one
when it is back, per process, with no traceback."""

from __future__ import annotations

import logging

import aio_pika
import pytest

from localmesh.faultproxy import FaultyProxy, Mode
from meshkit.messaging import Topology
from order_service.app import DEFINITION as ORDER
from tests.conftest import AMQP_URL
from tests.saga.conftest import Saga
from tests.support import eventually, queue_counts


async def _consumers(saga: Saga, count: int) -> None:
    async with await aio_pika.connect(AMQP_URL) as connection:
        name = Topology(saga.namespace).queue("order_service")

        async def there() -> bool:
            counts = await queue_counts(connection, name)
            return counts is not None and counts[1] == count

        await eventually(there, timeout=30, message=f"{count} consumer(s) on {name}")


async def test_a_broker_outage_logs_a_warning_each_way_and_no_traceback(
    saga_base: Saga, broker_proxy: FaultyProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await saga_base.start(
        "order_service", ORDER, amqp_url=f"amqp://guest:guest@{broker_proxy.endpoint}/"
    )
    await _consumers(saga_base, 1)
    caplog.clear()
    broker_proxy.set_mode(Mode.RESET)
    await _consumers(saga_base, 0)
    broker_proxy.set_mode(Mode.FORWARD)
    await _consumers(saga_base, 1)

    # aio-pika restores the consumers before it runs the reconnect callbacks that say so.
    async def said_back() -> bool:
        return any(r.getMessage().startswith("connected to RabbitMQ again") for r in caplog.records)

    await eventually(said_back, timeout=10, message="the reconnect warning")
    said = [
        (record.name, record.levelname, record.getMessage(), bool(record.exc_info))
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]
    assert not [entry for entry in said if entry[1] != "WARNING" or entry[3]], said
    broker = [entry[2] for entry in said if entry[0] == "meshkit.messaging.amqp"]
    assert len(broker) == 2, said
    assert broker[0].startswith("lost the connection to RabbitMQ")
    assert broker[1].startswith("connected to RabbitMQ again after")
    # The relay says it fails at its 1st, 2nd, 4th... retry, not at each of them.
    relay = [entry[2] for entry in said if entry[0] == "meshkit.messaging.outbox"]
    failing = [line for line in relay if line.startswith("outbox relay failed")]
    assert len(failing) <= 3, said
    # Nothing else says it more than once (the readiness change, say).
    others = [entry[2] for entry in said if entry[0] != "meshkit.messaging.outbox"]
    assert len(others) == len(set(others)), said
