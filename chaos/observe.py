"""Reading the mesh from outside after a round: each service's database by SQL, the dead-letter
queues by browsing them, the mail sink, and orders through the gateway as their customers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aio_pika
import asyncpg  # type: ignore[import-untyped]
import httpx

from chaos.facts import CANCELLED, PAID, SHIPPED, DeadLetterFact, Observed, OrderFact, PaymentFact
from chaos.load import Attempt
from chaos.seed import Shop
from chaos.settings import AMQP_URL
from chaos.stack import Stack
from meshkit.messaging import CONSUMERS, Topology
from meshkit.messaging.dead_letters import DeadLetterQueue


async def _fetch(dsn: str, query: str, *args: Any) -> list[Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def read_orders(dsn: str, keys: Sequence[str]) -> list[OrderFact]:
    """Every order placed under one of `keys`, with its lines."""
    rows = await _fetch(
        dsn,
        "SELECT id, user_id, idempotency_key, status, cancel_reason, created_at, paid_at,"
        " updated_at FROM orders WHERE idempotency_key = ANY($1::text[])",
        list(keys),
    )
    lines: dict[str, list[tuple[str, int]]] = {}
    for item in await _fetch(
        dsn,
        "SELECT order_id, product_id, quantity FROM order_items"
        " WHERE order_id = ANY($1::text[]) ORDER BY order_id, position",
        [row["id"] for row in rows],
    ):
        lines.setdefault(item["order_id"], []).append((item["product_id"], item["quantity"]))
    return [
        OrderFact(
            id=row["id"],
            user_id=row["user_id"],
            key=row["idempotency_key"],
            status=row["status"],
            cancel_reason=row["cancel_reason"],
            created_at=row["created_at"],
            final_at=row["paid_at"]
            if row["status"] in (PAID, SHIPPED)
            else row["updated_at"]
            if row["status"] == CANCELLED
            else None,
            lines=tuple(lines.get(row["id"], ())),
        )
        for row in rows
    ]


async def pending_count(dsn: str, keys: Sequence[str]) -> int:
    rows = await _fetch(
        dsn,
        "SELECT count(*) AS n FROM orders"
        " WHERE idempotency_key = ANY($1::text[]) AND status = 'PENDING'",
        list(keys),
    )
    return int(rows[0]["n"])


async def existing_order_ids(dsn: str, ids: Iterable[str]) -> frozenset[str]:
    rows = await _fetch(dsn, "SELECT id FROM orders WHERE id = ANY($1::text[])", list(set(ids)))
    return frozenset(row["id"] for row in rows)


async def read_payments(dsn: str, order_ids: Sequence[str]) -> list[PaymentFact]:
    rows = await _fetch(
        dsn, "SELECT order_id, status FROM payments WHERE order_id = ANY($1::text[])", order_ids
    )
    return [PaymentFact(row["order_id"], row["status"]) for row in rows]


async def read_stock(dsn: str, product_ids: Sequence[str]) -> dict[str, int]:
    rows = await _fetch(
        dsn, "SELECT id, stock FROM products WHERE id = ANY($1::text[])", list(product_ids)
    )
    return {row["id"]: int(row["stock"]) for row in rows}


async def read_open_reservations(
    dsn: str, product_ids: Sequence[str]
) -> list[tuple[str, str, int]]:
    rows = await _fetch(
        dsn,
        "SELECT order_id, product_id, quantity FROM reservations"
        " WHERE product_id = ANY($1::text[]) AND released_at IS NULL",
        list(product_ids),
    )
    return [(row["order_id"], row["product_id"], int(row["quantity"])) for row in rows]


async def unsaved_reservations(stack: Stack, product_ids: Sequence[str]) -> list[str]:
    """Orders that hold stock of `product_ids` but are not in the order service's database: a
    placement between its reservation and the save of its order (or one whose order was never
    saved, and its stock never released)."""
    held = await _fetch(
        stack.databases["product_service"],
        "SELECT DISTINCT order_id FROM reservations"
        " WHERE product_id = ANY($1::text[]) AND released_at IS NULL",
        list(product_ids),
    )
    holders = [row["order_id"] for row in held]
    saved = await existing_order_ids(stack.databases["order_service"], holders)
    return sorted(set(holders) - saved)


async def leased_notifications(stack: Stack, longer_than_seconds: float = 30.0) -> list[str]:
    """Notifications the mailer has claimed for a pass and not yet recorded: PENDING, their
    next attempt put off by the pass's lease (a retry's backoff is far shorter at first)."""
    rows = await _fetch(
        stack.databases["notification_service"],
        "SELECT id FROM notifications WHERE status = 'PENDING' AND attempts > 0"
        " AND next_attempt_at > now() + make_interval(secs => $1)",
        longer_than_seconds,
    )
    return [row["id"] for row in rows]


async def unsettled_notifications(stack: Stack, order_ids: Sequence[str]) -> int:
    """How many notifications about `order_ids` the mailer has not recorded as sent (or given
    up on) yet."""
    rows = await _fetch(
        stack.databases["notification_service"],
        "SELECT count(*) AS n FROM notifications"
        " WHERE order_id = ANY($1::text[]) AND status = 'PENDING'",
        list(order_ids),
    )
    return int(rows[0]["n"])


async def queue_consumers(namespace: str, consumer: str) -> int:
    """How many consumers `consumer`'s queue has on the broker."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(Topology(namespace).queue(consumer), passive=True)
        return queue.declaration_result.consumer_count or 0
    finally:
        await connection.close()


async def read_dead_letters(namespace: str) -> list[DeadLetterFact]:
    """What waits in every consumer's dead-letter queue, left there (a browse)."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        found = []
        for consumer in CONSUMERS:
            queue = DeadLetterQueue(connection, Topology(namespace), consumer)
            found += [
                DeadLetterFact(consumer, letter.message_id, letter.event_type)
                for letter in await queue.browse()
            ]
        return found
    finally:
        await connection.close()


async def discard_dead_letters(namespace: str, consumer: str, message_ids: Sequence[str]) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await DeadLetterQueue(connection, Topology(namespace), consumer).discard(message_ids)
    finally:
        await connection.close()


async def stale_reads(
    client: httpx.AsyncClient,
    orders: Sequence[OrderFact],
    tokens: Mapping[str, str],
    settle_seconds: float = 10.0,
) -> list[str]:
    """Orders the gateway answers their customers with another status than the database
    holds, still after `settle_seconds` (its answer cache forgets an order as soon as it hears
    of the change, which is after the commit)."""
    wanted = {order.id: order for order in orders}
    deadline = time.monotonic() + settle_seconds
    gate = asyncio.Semaphore(16)

    async def disagrees(order: OrderFact) -> bool:
        async with gate:
            try:
                response = await client.get(
                    f"/v1/orders/{order.id}",
                    headers={"Authorization": f"Bearer {tokens[order.user_id]}"},
                )
            except httpx.HTTPError:
                return True
        return response.status_code != 200 or response.json()["status"] != order.status

    while True:
        answers = await asyncio.gather(*(disagrees(order) for order in wanted.values()))
        wanted = {
            order.id: order for order, wrong in zip(wanted.values(), answers, strict=True) if wrong
        }
        if not wanted or time.monotonic() >= deadline:
            return sorted(wanted)
        await asyncio.sleep(1.0)


async def observe(
    stack: Stack,
    client: httpx.AsyncClient,
    shop: Shop,
    attempts: Sequence[Attempt],
    initial_stock: Mapping[str, int],
) -> Observed:
    orders = await read_orders(stack.databases["order_service"], [a.key for a in attempts])
    answered = [order_id for attempt in attempts for order_id in attempt.order_ids]
    products = list(initial_stock)
    order_ids = sorted({order.id for order in orders} | set(answered))
    tokens = {person.id: person.token for person in shop.customers}
    wanted = set(order_ids)
    return Observed(
        orders=tuple(orders),
        existing_ids=await existing_order_ids(stack.databases["order_service"], answered),
        payments=tuple(await read_payments(stack.databases["payment_service"], order_ids)),
        initial_stock=dict(initial_stock),
        stock=await read_stock(stack.databases["product_service"], products),
        open_reservations=tuple(
            await read_open_reservations(stack.databases["product_service"], products)
        ),
        dead_letters=tuple(await read_dead_letters(stack.namespace)),
        mails=tuple(mail for mail in stack.mailbox.mails() if mail.order_id in wanted),
        emails_of={person.id: person.email for person in shop.customers},
        stale_reads=tuple(await stale_reads(client, orders, tokens)),
    )
