"""`python -m <service> dead-letters` on the real broker: list, show, replay and discard."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys

import pytest

from meshkit.messaging.dead_letters import run_command
from meshkit.settings import load_settings
from payment_service.settings import PaymentSettings
from tests.conftest import AMQP_URL
from tests.runtime.conftest import CONSUMER, ConsumerRig
from tests.runtime.test_consumer_outcomes import counted_since, outcomes
from tests.support import eventually, queue_counts


def _settings(namespace: str) -> PaymentSettings:
    assert PaymentSettings.service_name == CONSUMER
    return load_settings(
        PaymentSettings, env_file=None, amqp_url=AMQP_URL, amqp_namespace=namespace
    )


async def _command(namespace: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = await run_command(_settings(namespace), argv, out)
    return status, out.getvalue()


async def _consuming(rig: ConsumerRig) -> None:
    """Until the consumer's queue exists and is consumed: published before, a message would
    be routed nowhere."""

    async def consumed() -> bool:
        counts = await rig.counts()
        return counts is not None and counts[1] == 1

    await eventually(consumed, message="consuming")


async def _dead_lettered(rig: ConsumerRig, count: int) -> None:
    async def there() -> bool:
        counts = await queue_counts(rig.connection, rig.topology.dead_letter_queue(CONSUMER))
        return counts is not None and counts[0] == count

    await eventually(there, timeout=20, message=f"{count} dead letter(s)")


async def test_a_dead_letter_is_listed_shown_and_replayed_once(
    consumer_rig: ConsumerRig, amqp_namespace: str
) -> None:
    fixed = False
    handled: list[str] = []

    async def handle(uow: object, body: object, envelope: object) -> None:
        if not fixed:
            raise RuntimeError("a bug, since fixed")
        handled.append(getattr(envelope, "message_id", ""))

    consumer = consumer_rig.consumer(
        {"order.created": handle}, retry_base_seconds=0.001, retry_max_seconds=0.01
    )
    running = asyncio.create_task(consumer.run())
    try:
        await _consuming(consumer_rig)
        await consumer_rig.publish("poison-1", correlation_id="order-7")
        await _dead_lettered(consumer_rig, 1)

        status, listed = await _command(amqp_namespace, "list")
        assert status == 0
        assert "1 message(s)" in listed
        row = next(line for line in listed.splitlines() if line.startswith("poison-1"))
        assert row.split()[1:3] == ["order.created", "order-7"]
        assert row.endswith("delivery_limit")
        # Listing changes nothing.
        await _dead_lettered(consumer_rig, 1)

        status, shown = await _command(amqp_namespace, "show", "poison-1")
        details = json.loads(shown)
        assert (details["message_id"], details["correlation_id"]) == ("poison-1", "order-7")
        assert details["reason"] == "delivery_limit"
        assert details["body"] == {}  # an empty OrderCreated, decoded

        fixed = True
        before = outcomes()
        status, replayed = await _command(amqp_namespace, "replay", "poison-1")
        assert (status, replayed.strip()) == (0, "replayed poison-1")

        async def replay_handled() -> bool:
            return handled == ["poison-1"]

        await eventually(replay_handled, message="the replay handled")
        await _dead_lettered(consumer_rig, 0)

        # Replayed again (as by a replay cut short): the inbox takes it once.
        await consumer_rig.publish("poison-1", correlation_id="order-7")

        async def duplicate_counted() -> bool:
            return counted_since(before)["duplicate"] == 1

        await eventually(duplicate_counted, message="the second copy seen as a duplicate")
        assert handled == ["poison-1"]
        status, _ = await _command(amqp_namespace, "replay", "poison-1")
        assert status == 1  # no longer there
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_discard_removes_the_named_messages_or_all(
    consumer_rig: ConsumerRig, amqp_namespace: str
) -> None:
    async def fail(uow: object, body: object, envelope: object) -> None:
        raise RuntimeError("never handled")

    consumer = consumer_rig.consumer(
        {"order.created": fail}, retry_base_seconds=0.001, retry_max_seconds=0.01
    )
    running = asyncio.create_task(consumer.run())
    try:
        await _consuming(consumer_rig)
        for message_id in ("bad-1", "bad-2", "bad-3"):
            await consumer_rig.publish(message_id)
        await _dead_lettered(consumer_rig, 3)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    status, discarded = await _command(amqp_namespace, "discard", "bad-2", "not-there")
    assert status == 1  # one of them was not found
    assert discarded.strip() == "discarded bad-2"
    _, listed = await _command(amqp_namespace, "list")
    assert "bad-2" not in listed
    assert "bad-1" in listed
    assert "bad-3" in listed
    status, discarded = await _command(amqp_namespace, "discard", "--all")
    assert status == 0
    assert sorted(discarded.split()) == ["bad-1", "bad-3", "discarded", "discarded"]
    _, listed = await _command(amqp_namespace, "list")
    assert "is empty" in listed


def test_every_consumer_has_the_command_and_others_do_not(amqp_namespace: str) -> None:
    env = {**os.environ, "AMQP_URL": AMQP_URL, "AMQP_NAMESPACE": amqp_namespace}
    # The queues exist once a consumer has declared them; without, the command says so. The
    # four interpreters start side by side: each takes a second to import its service.
    commands = {
        **{
            service: [sys.executable, "-m", service, "dead-letters", "--help"]
            for service in ("order_service", "payment_service", "notification_service")
        },
        "product_service": [sys.executable, "-m", "product_service", "dead-letters", "list"],
    }
    running = {
        service: subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for service, argv in commands.items()
    }
    try:
        done = {
            service: (process, *process.communicate(timeout=60))
            for service, process in running.items()
        }
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for service in ("order_service", "payment_service", "notification_service"):
        process, stdout, stderr = done[service]
        assert process.returncode == 0, stderr
        assert "replay" in stdout
    refused, _, stderr = done["product_service"]
    assert refused.returncode == 2
    assert "invalid choice" in stderr


@pytest.mark.parametrize("argv", [("replay",), ("discard",), ("show",)])
async def test_a_command_without_its_ids_is_a_usage_error(
    amqp_namespace: str, argv: tuple[str, ...]
) -> None:
    with pytest.raises(SystemExit) as refused:
        await _command(amqp_namespace, *argv)
    assert refused.value.code == 2
