"""The trace of a change survives the outbox: a relay in another process, started after the
one that committed the event has ended, publishes it in the same trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from meshkit.settings import PROJECT_ROOT
from tests.conftest import AMQP_URL
from tests.otlp import SpanStore, grpc_receiver

pytestmark = pytest.mark.integration

# The process that places an order: the event is committed to the outbox inside a span.
COMMIT = """
import asyncio, json, sys
from sqlalchemy import MetaData
from ecommerce.events.v1 import events_pb2
from meshkit import telemetry
from meshkit.data import Database, UnitOfWork
from meshkit.messaging import Outbox, outbox_table

async def main(url):
    metadata = MetaData()
    table = outbox_table(metadata)
    async with Database(url) as database:
        async with database.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        with telemetry.tracer().start_as_current_span("place order") as span:
            async with UnitOfWork(database, Outbox(table, "order_service")) as uow:
                uow.publish(events_pb2.OrderCreated(order_id="o-1"), correlation_id="o-1")
                await uow.commit()
            context = span.get_span_context()
    print(json.dumps([format(context.trace_id, "032x"), format(context.span_id, "016x")]))

telemetry.configure_tracing("committer")
asyncio.run(main(sys.argv[1]))
telemetry.shutdown_tracing()
"""

# A relay started afterwards, as after a restart: it publishes what it finds unsent.
RELAY = """
import asyncio, sys
import aio_pika
from sqlalchemy import MetaData
from meshkit import telemetry
from meshkit.data import Database
from meshkit.messaging import Outbox, OutboxRelay, Topology, outbox_table

async def main(url, amqp_url, namespace):
    table = outbox_table(MetaData())
    topology = Topology(namespace)
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        await topology.declare_all(connection)
        async with Database(url) as database:
            # No grace: no handed publisher of the row is alive, which a restarted relay
            # could only know by waiting the grace out.
            relay = OutboxRelay(
                database,
                Outbox(table, "order_service"),
                connection,
                topology,
                handoff_grace_seconds=0,
            )
            assert await relay.relay_batch() == 1
    finally:
        await topology.delete_all(connection)
        await connection.close()

telemetry.configure_tracing("relay")
asyncio.run(main(*sys.argv[1:]))
telemetry.shutdown_tracing()
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, SpanStore]]:
    with grpc_receiver() as receiving:
        yield receiving


def run(script: str, *args: str, endpoint: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_relay_started_after_the_commit_publishes_in_the_trace_of_the_change(
    receiver: tuple[str, SpanStore], postgres_url: str, amqp_namespace: str
) -> None:
    endpoint, store = receiver
    trace_id, placing_span = json.loads(run(COMMIT, postgres_url, endpoint=endpoint))
    run(RELAY, postgres_url, AMQP_URL, amqp_namespace, endpoint=endpoint)

    (publish,) = [s for s in store.spans() if s.service == "relay"]
    assert (publish.name, publish.kind) == ("publish order.created", "producer")
    assert (publish.trace_id, publish.parent_id) == (trace_id, placing_span)
