"""One round: load, a fault, more load, then every order waited for and the invariants checked."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from chaos.facts import Round
from chaos.faults import Fault, FaultResult
from chaos.invariants import FINAL_WITHIN_SECONDS, Figures, check, email_findings
from chaos.load import OrderLoad
from chaos.observe import (
    discard_dead_letters,
    observe,
    pending_count,
    read_orders,
    unsettled_notifications,
)
from chaos.seed import Shop, stock_products
from chaos.stack import Stack

# Load before the fault, so that it strikes a mesh in full flow, and after, so that the mesh
# is seen taking new orders once it is over.
BEFORE_SECONDS = 10.0
AFTER_SECONDS = 8.0
# How long past the limit orders are waited for, so that a slow recovery is measured, not cut
# off at the limit.
SETTLE_GRACE_SECONDS = 15.0
# Emails may come later than their orders are final: a notification service killed mid-pass
# leaves its batch leased for a minute here (`chaos.settings`) before it is sent again.
EMAILS_WITHIN_SECONDS = 100.0
READY_WITHIN_SECONDS = 90.0


@dataclass
class Suite:
    """What every round shares."""

    stack: Stack
    client: httpx.AsyncClient
    shop: Shop
    rate: float
    rng: random.Random
    began: float = field(default_factory=time.monotonic)
    # Message ids dead-lettered on purpose so far.
    tolerated_dead_letters: set[str] = field(default_factory=set)

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f}s] {message}", file=sys.stderr, flush=True)


async def until(
    probe: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.5
) -> bool:
    """Await `probe` until it is true (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if await probe():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


async def settle_and_check(
    suite: Suite,
    name: str,
    load: OrderLoad,
    initial_stock: dict[str, int],
    ended_at: datetime,
    result: FaultResult,
    incidents: list[str],
) -> Figures:
    """Stop the load, wait for its orders and their emails, read the mesh and check it."""
    stack = suite.stack
    load.stop()
    await load.drain()
    keys = [attempt.key for attempt in load.attempts]
    orders_db = stack.databases["order_service"]

    async def all_final() -> bool:
        return await pending_count(orders_db, keys) == 0

    if not await until(all_final, FINAL_WITHIN_SECONDS + SETTLE_GRACE_SECONDS):
        suite.say(f"{name}: orders still pending; checking them as they are")
    emails_of = {person.id: person.email for person in suite.shop.customers}

    async def all_emails() -> bool:
        # Sent, and recorded as sent: an email sent again after a lease would otherwise come
        # after the count, its duplicate unseen.
        orders = await read_orders(orders_db, keys)
        if email_findings(orders, stack.mailbox.mails(), emails_of).missing:
            return False
        return await unsettled_notifications(stack, [order.id for order in orders]) == 0

    remaining = EMAILS_WITHIN_SECONDS - (datetime.now(UTC) - ended_at).total_seconds()
    await until(all_emails, max(1.0, remaining), interval=1.0)
    for process in stack.mesh.exited():
        # Not one the fault stopped (that one was started again): it died of the round.
        incidents.append(f"{process} exited on its own during the round; started again")
        await stack.restart(process)
    try:
        await stack.wait_ready(READY_WITHIN_SECONDS)
    except (RuntimeError, TimeoutError) as exc:
        incidents.append(f"the mesh was not ready again: {exc}")
    suite.tolerated_dead_letters |= {message_id for _, message_id in result.dead_letters}
    observed = await observe(stack, suite.client, suite.shop, load.attempts, initial_stock)
    figures = check(
        Round(
            fault=name,
            attempts=tuple(load.attempts),
            fault_ended_at=ended_at,
            observed=observed,
            expected_dead_letters=result.dead_letters,
            tolerated_dead_letters=frozenset(suite.tolerated_dead_letters),
            incidents=tuple(incidents),
        )
    )
    # What was dead-lettered on purpose goes, once seen there: the queues are left clean.
    for consumer, message_id in result.dead_letters:
        await discard_dead_letters(stack.namespace, consumer, [message_id])
    return figures


async def run_round(suite: Suite, fault: Fault) -> Figures:
    stack = suite.stack
    initial_stock = await stock_products(suite.client, suite.shop, fault.name)
    load = OrderLoad(suite.client, suite.shop.customers, list(initial_stock), suite.rate, suite.rng)
    placing = asyncio.create_task(load.run())
    incidents: list[str] = []
    suite.say(f"{fault.name}: {BEFORE_SECONDS:.0f}s of load, then {fault.description}")
    await asyncio.sleep(BEFORE_SECONDS)
    try:
        result = await fault.inject(stack, load)
    except Exception as exc:
        incidents.append(f"the fault could not be carried out: {type(exc).__name__}: {exc}")
        stack.restore_dependencies()
        result = FaultResult()
    ended_at = datetime.now(UTC)
    incidents += result.incidents
    for note in result.notes:
        suite.say(f"{fault.name}: {note}")
    suite.say(f"{fault.name}: over; {AFTER_SECONDS:.0f}s more load, then checks")
    await asyncio.sleep(AFTER_SECONDS)
    load.stop()
    await placing
    figures = await settle_and_check(
        suite, fault.name, load, initial_stock, ended_at, result, incidents
    )
    suite.say(f"{fault.name}: {'PASS' if figures.passed else 'FAIL'}")
    return figures
