"""Background jobs outlive their failures; a shutdown that hangs still ends the process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit import service
from meshkit.service import supervise
from tests.runtime.conftest import ConsumerRig
from tests.support import eventually, free_port

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


async def test_a_job_that_loses_its_cancellation_is_still_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "RECANCEL_AFTER_SECONDS", 0.05)
    starts = 0
    running = asyncio.Event()

    async def loses_one_cancel() -> None:
        # As a job whose cancellation met a timeout expiring at the same moment: it sees a
        # failure, not a cancellation, and is restarted.
        nonlocal starts
        starts += 1
        running.set()
        try:
            await asyncio.Future()
        except asyncio.CancelledError:
            if starts == 1:
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
                raise TimeoutError("the cancellation was lost") from None
            raise

    task = asyncio.create_task(supervise(loses_one_cancel, initial_backoff=0.01))
    await asyncio.wait_for(running.wait(), 5)
    await asyncio.wait_for(service.stop_tasks([task]), 5)
    assert task.cancelled()


async def test_a_job_that_returns_is_not_restarted() -> None:
    starts = 0

    async def once() -> None:
        nonlocal starts
        starts += 1

    await asyncio.wait_for(supervise(once), 5)
    assert starts == 1


async def test_a_consumer_whose_queue_cannot_be_declared_consumes_once_it_can(
    consumer_rig: ConsumerRig,
) -> None:
    # A real broker refusal: the consumer's queue already exists with other arguments, so
    # declaring it closes the channel with PRECONDITION_FAILED and the job fails at start.
    await consumer_rig.channel.declare_queue(consumer_rig.queue, durable=True)
    handled: list[str] = []

    async def record(session: object, body: object, envelope: object) -> None:
        handled.append(getattr(envelope, "message_id", ""))

    consumer = consumer_rig.consumer({"order.created": record})
    attempts = 0

    async def counted() -> None:
        nonlocal attempts
        attempts += 1
        await consumer.run()

    task = asyncio.create_task(supervise(counted, initial_backoff=0.05, max_backoff=0.2))
    try:
        await eventually(lambda: _ready(attempts >= 2), message="a second attempt")
        await consumer_rig.channel.queue_delete(consumer_rig.queue)
        # Consuming comes after the bindings: from then on, nothing published is lost.
        await eventually(lambda: _consumed(consumer_rig), message="the consumer on its queue")
        await consumer_rig.publish("m-1")
        await eventually(lambda: _ready(handled == ["m-1"]), message="the event handled")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _ready(condition: bool) -> bool:
    return condition


async def _consumed(rig: ConsumerRig) -> bool:
    counts = await rig.counts()
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
