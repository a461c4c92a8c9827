"""The faults, each injected once under load; a fault returns when it is over."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika

from chaos.load import DECLINED, Attempt, OrderLoad, Outcome
from chaos.observe import (
    leased_notifications,
    queue_consumers,
    read_stock,
    unsaved_reservations,
)
from chaos.settings import AMQP_URL
from chaos.stack import PROCESSES, REPLICATED, Stack, wait_serving
from localmesh.faultproxy import Mode
from meshkit.messaging import CONSUMERS

# How long a killed process stays down before it is started again, as by a supervisor.
RESTART_AFTER_SECONDS = 5.0
PRODUCT_OUTAGE_SECONDS = 30.0
BROKER_OUTAGE_SECONDS = 60.0
# A PostgreSQL restart: connections cut, and none accepted for a few seconds.
DATABASE_RESTART_SECONDS = 3.0
REDIS_OUTAGE_SECONDS = 30.0
# Orders with a declined card placed just before the product service goes down.
DECLINED_BURST = 10
# How long both replicas serve before one of each is killed, and the survivors alone after.
REPLICAS_TOGETHER_SECONDS = 10.0
SURVIVORS_ALONE_SECONDS = 10.0
# How many times the order service is frozen and looked at before it is killed regardless,
# and the orders placed just before each look.
MID_PLACEMENT_TRIES = 60
MID_PLACEMENT_BURST = 4
# The same for the notification service in the middle of a mailer pass.
MID_PASS_TRIES = 60
# Field 1 (length-delimited) claiming four gigabytes, in six bytes: no protobuf parser can read
# it, whatever the message type.
POISON_BODY = b"\x0a\xff\xff\xff\xff\x0f"


@dataclass(frozen=True)
class FaultResult:
    """What a fault left for the checks to know."""

    # (consumer, message id) pairs the fault sent to be dead-lettered.
    dead_letters: frozenset[tuple[str, str]] = frozenset()
    # What the fault found as it struck, for the run's progress output.
    notes: tuple[str, ...] = ()
    # What kept the fault from being what it says: the round cannot pass with it.
    incidents: tuple[str, ...] = ()


Inject = Callable[[Stack, OrderLoad], Awaitable[FaultResult]]


@dataclass(frozen=True)
class Fault:
    """A fault by name; `inject` strikes while the load runs and returns once it is over."""

    name: str
    description: str
    inject: Inject


def kill_and_restart(name: str) -> Inject:
    """SIGKILL, then the same process started again, as a supervisor would."""

    async def inject(stack: Stack, load: OrderLoad) -> FaultResult:
        await stack.kill(name)
        await asyncio.sleep(RESTART_AFTER_SECONDS)
        await stack.restart(name)
        return FaultResult()

    return inject


async def kill_order_mid_placement(stack: Stack, load: OrderLoad) -> FaultResult:
    """kill -9 of the order service while it holds stock reserved for an order it has not
    saved yet: the order service is frozen (SIGSTOP) at random moments under load until the
    product service's database holds a reservation whose order the order service's does not,
    and killed then. An ordinary kill strikes that moment only by chance; a few orders placed
    just before each look make it likely."""
    caught: list[str] = []
    for _ in range(MID_PLACEMENT_TRIES):
        for _ in range(MID_PLACEMENT_BURST):
            load.place()
        await asyncio.sleep(random.uniform(0.005, 0.08))
        stack.pause("order_service", True)
        try:
            caught = await unsaved_reservations(stack, load.product_ids)
        finally:
            if not caught:
                stack.pause("order_service", False)
        if caught:
            await stack.kill("order_service")
            break
    else:
        await stack.kill("order_service")
    await asyncio.sleep(RESTART_AFTER_SECONDS)
    await stack.restart("order_service")
    if not caught:
        return FaultResult(notes=("no placement caught between reservation and save",))
    return FaultResult(notes=(f"killed holding stock for unsaved order(s) {', '.join(caught)}",))


async def kill_notification_mid_send(stack: Stack, load: OrderLoad) -> FaultResult:
    """kill -9 of the notification service in the middle of a mailer pass: frozen at random
    moments until its database holds emails claimed by a pass and not yet recorded, and killed
    then. Those emails go out again once their lease ends (a minute here): the ones that had
    left before the kill arrive twice, under the same Message-ID."""
    leased: list[str] = []
    for _ in range(MID_PASS_TRIES):
        # Emails in bursts make passes of several, each longer to catch.
        for _ in range(MID_PLACEMENT_BURST):
            load.place()
        await asyncio.sleep(random.uniform(0.02, 0.2))
        stack.pause("notification_service", True)
        try:
            leased = await leased_notifications(stack)
        finally:
            if not leased:
                stack.pause("notification_service", False)
        if leased:
            await stack.kill("notification_service")
            break
    else:
        await stack.kill("notification_service")
    await asyncio.sleep(RESTART_AFTER_SECONDS)
    await stack.restart("notification_service")
    if not leased:
        return FaultResult(notes=("no mailer pass caught between claim and record",))
    return FaultResult(notes=(f"killed with {len(leased)} email(s) claimed and unrecorded",))


async def _answered(attempts: list[Attempt], timeout: float) -> None:
    """Until every one of `attempts` has its outcome, or `timeout` passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(a.outcome is Outcome.PENDING for a in attempts):
        if asyncio.get_running_loop().time() >= deadline:
            return
        await asyncio.sleep(0.1)


async def product_outage(stack: Stack, load: OrderLoad) -> FaultResult:
    """The product service down for 30 s while payments are declined: each declined order's
    stock must be released, which needs the product service, so the order service's
    payment.failed handler waits in a retry queue (and the reconciler retries too) until it
    is back. The payment service is paused while a burst of such orders is placed, then let
    go once the product service is gone, so that its declines land inside the outage."""
    # Of products that will not sell out meanwhile: each order of the burst must be placed.
    stock = await read_stock(stack.databases["product_service"], load.product_ids)
    plenty = [product for product, units in stock.items() if units >= 100 * DECLINED_BURST]
    stack.pause("payment_service", True)
    try:
        burst = [load.place(DECLINED, among=plenty) for _ in range(DECLINED_BURST)]
        await _answered(burst, timeout=10.0)
        await stack.kill("product_service")
    finally:
        stack.pause("payment_service", False)
    await asyncio.sleep(PRODUCT_OUTAGE_SECONDS)
    await stack.restart("product_service")
    placed = sum(1 for attempt in burst if attempt.outcome is Outcome.ACCEPTED)
    return FaultResult(notes=(f"{placed} declined order(s) placed just before the outage",))


def dependency_outage(dependency: str, seconds: float) -> Inject:
    """Every connection to `dependency` cut at once, and every new one refused for `seconds`,
    as when it restarts or its network goes."""

    async def inject(stack: Stack, load: OrderLoad) -> FaultResult:
        proxy = stack.proxies[dependency]
        proxy.set_mode(Mode.RESET)
        try:
            await asyncio.sleep(seconds)
        finally:
            proxy.set_mode(Mode.FORWARD)
        return FaultResult()

    return inject


async def replicas(stack: Stack, load: OrderLoad) -> FaultResult:
    """Two replicas each of the order and payment services, then one of each killed.

    Both replicas consume the same queues, run the outbox relay (disjoint rows, SKIP LOCKED)
    and the reconciler, and take gRPC connections through the balancer. Killing one of each
    mid-load leaves its unacknowledged messages to be delivered to the other, its relay's
    uncommitted batch to be taken again, and its clients' connections to be opened again, to
    the survivor. The killed ones are then started again and the second replicas stopped with
    SIGTERM (a graceful drain, under load), so the mesh ends as it began."""
    alone = {name: await queue_consumers(stack.namespace, name) for name in REPLICATED}
    for name in REPLICATED:
        await stack.start_replica(name)
    for name in REPLICATED:
        await wait_serving(stack.replica_ports[name], timeout=60.0)
    await asyncio.sleep(REPLICAS_TOGETHER_SECONDS)
    # Both replicas of each must be consuming, or the kill below proves nothing.
    together = {name: await queue_consumers(stack.namespace, name) for name in REPLICATED}
    incidents = tuple(
        f"{name}'s queue had {together[name]} consumer(s) with two replicas, {alone[name]} with one"
        for name in REPLICATED
        if together[name] != 2 * alone[name]
    )
    for name in REPLICATED:
        await stack.kill(name)
    await asyncio.sleep(SURVIVORS_ALONE_SECONDS)
    for name in REPLICATED:
        await stack.restart(name)
    for name in REPLICATED:
        await wait_serving(stack.mesh.ports.grpc[name], timeout=60.0)
    for name in REPLICATED:
        await stack.stop_replica(name)
    consumers = ", ".join(f"{name} {count}" for name, count in together.items())
    return FaultResult(notes=(f"consumers with two replicas: {consumers}",), incidents=incidents)


async def poison(stack: Stack, load: OrderLoad) -> FaultResult:
    """An `order.created` no one can read, published to the events exchange as a broken
    publisher would, with a message id of its own: every consumer of order.created (the
    payment and notification services) must set it aside in its dead-letter queue, at once,
    and go on with the rest."""
    message_id = f"poison{uuid.uuid4().hex[:16]}"
    # Straight to the broker, not through the proxy the mesh uses.
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await stack.topology.declare_exchange(channel)
        await exchange.publish(
            aio_pika.Message(
                POISON_BODY,
                message_id=message_id,
                type="order.created",
                correlation_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key="order.created",
            mandatory=True,
        )
    finally:
        await connection.close()
    consumers = [consumer for consumer, types in CONSUMERS.items() if "order.created" in types]
    return FaultResult(dead_letters=frozenset((consumer, message_id) for consumer in consumers))


FAULTS: tuple[Fault, ...] = (
    *(
        Fault(f"kill-{name.removesuffix('_service')}", f"kill -9 {name}, restarted 5 s later",
              kill_and_restart(name))
        for name in PROCESSES
    ),
    Fault("kill-order-mid-placement",
          "kill -9 order_service holding stock for an order not yet saved",
          kill_order_mid_placement),
    Fault("kill-notification-mid-send",
          "kill -9 notification_service with emails claimed and unrecorded",
          kill_notification_mid_send),
    Fault("postgres-restart", "PostgreSQL restarted: cut, 3 s refused",
          dependency_outage("postgres", DATABASE_RESTART_SECONDS)),
    Fault("redis-cut", "Redis cut for 30 s", dependency_outage("redis", REDIS_OUTAGE_SECONDS)),
    Fault("rabbitmq-cut", "RabbitMQ cut for 60 s",
          dependency_outage("rabbitmq", BROKER_OUTAGE_SECONDS)),
    Fault("product-outage", "product service down 30 s while payments are declined",
          product_outage),
    Fault("replicas", "two order and payment replicas, one of each killed", replicas),
    Fault("poison", "an unreadable order.created published", poison),
)  # fmt: skip
FAULTS_BY_NAME = {fault.name: fault for fault in FAULTS}
