"""Background jobs outlive their failures; a shutdown that hangs still ends the process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aio_pika
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import MetaData

from meshkit.amqp import Topology
from meshkit.db import Database
from meshkit.events import CONTENT_TYPE
from meshkit.inbox import EventConsumer, inbox_table
from meshkit.service import supervise
from tests.conftest import AMQP_URL
from tests.support import eventually, free_port, queue_counts

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_a_failed_job_restarts_until_it_runs() -> None:
    starts = 0
    running = asyncio.Event()

    async def flaky() -> None:
        nonlocal starts
        starts += 1
        if starts < 3:
            raise ConnectionResetError("broker went away")
        running.set()
        await asyncio.Future()

    task = asyncio.create_task(supervise(flaky, initial_backoff=0.01))
    await asyncio.wait_for(running.wait(), 5)
    assert starts == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert starts == 3  # cancellation is not a failure: nothing restarts


async def test_a_job_that_returns_is_not_restarted() -> None:
    starts = 0

    async def once() -> None:
        nonlocal starts
        starts += 1

    await asyncio.wait_for(supervise(once), 5)
    assert starts == 1


async def test_a_consumer_whose_queue_cannot_be_declared_consumes_once_it_can(
    postgres_url: str, amqp_namespace: str
) -> None:
    # A real broker refusal: the consumer's queue already exists with other arguments, so
    # declaring it closes the channel with PRECONDITION_FAILED and the job fails at start.
    topology = Topology(amqp_namespace)
    metadata = MetaData()
    inbox = inbox_table(metadata)
    handled: list[str] = []

    async def record(session: object, body: object, envelope: object) -> None:
        handled.append(getattr(envelope, "message_id", ""))

    async with Database(postgres_url) as database:
        async with database.engine.begin() as tables:
            await tables.run_sync(metadata.create_all)
        connection = await aio_pika.connect_robust(AMQP_URL)
        try:
            channel = await connection.channel()
            await channel.declare_queue(topology.queue("payment_service"), durable=True)
            consumer = EventConsumer(
                database,
                inbox,
                connection,
                topology,
                "payment_service",
                {"order.created": record},
            )
            attempts = 0

            async def counted() -> None:
                nonlocal attempts
                attempts += 1
                await consumer.run()

            task = asyncio.create_task(supervise(counted, initial_backoff=0.05, max_backoff=0.2))
            try:
                await eventually(lambda: _ready(attempts >= 2), message="a second attempt")
                await channel.queue_delete(topology.queue("payment_service"))
                exchange = await topology.declare_exchange(channel)
                # Consuming comes after the bindings: from then on, nothing published is lost.
                await eventually(
                    lambda: _consumed(connection, topology.queue("payment_service")),
                    message="the consumer on its own queue",
                )
                await exchange.publish(
                    aio_pika.Message(
                        b"", message_id="m-1", type="order.created", content_type=CONTENT_TYPE
                    ),
                    routing_key="order.created",
                )
                await eventually(lambda: _ready(handled == ["m-1"]), message="the event handled")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            await connection.close()


async def _ready(condition: bool) -> bool:
    return condition


async def _consumed(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    counts = await queue_counts(connection, name)
    return counts is not None and counts[1] > 0


async def test_a_service_stuck_in_shutdown_exits_at_its_deadline(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "GRPC_PORT": str(port),
        "GRPC_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE_SECONDS": "0",
        "SHUTDOWN_DEADLINE_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.runtime.stuck_service",
        cwd=PROJECT_ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(lambda: _serving(port), timeout=30, message="stuck_service serving")
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        stderr = await asyncio.wait_for(process.stderr.read(), 30)
        returncode = await asyncio.wait_for(process.wait(), 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert returncode == 1
    assert "cancelled, carrying on" in log
    assert "shutdown did not finish in 1s" in log
    assert "refuse_to_stop" in log  # the log names what was stuck


async def _serving(port: int) -> bool:
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
    except grpc.aio.AioRpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)
