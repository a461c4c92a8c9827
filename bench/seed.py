"""Seed data: catalog and orders written straight into the services' databases, people
signed up through the gateway.

Products, categories and past orders go in with PostgreSQL's COPY, in the columns of the
services' own models (`product_service.models`, `order_service.models`): 10,000 products
through the API would take minutes and measure nothing we report. Users register and sign in
through the gateway, so their tokens are real ones, signed by the user service.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack
from meshkit.ids import new_id
from order_service.models import Order, OrderItem, OrderStatus
from product_service.models import Category, Product

PASSWORD = "a fine bench password"
ADDRESS = {
    "recipient": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}
_WORDS = ("red", "blue", "green", "steel", "oak", "linen", "wool", "cotton", "small", "large")


@dataclass(frozen=True)
class Shopper:
    id: str
    email: str
    token: str


@dataclass
class Seeded:
    """What the load generators need to know about the data (written as JSON for them)."""

    product_ids: list[str]
    category_ids: list[str]
    shoppers: list[Shopper]
    # (order id, its owner's token) pairs, for reading orders.
    orders: list[tuple[str, str]] = field(default_factory=list)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def read(cls, path: Path) -> Seeded:
        raw: dict[str, Any] = json.loads(path.read_text())
        return cls(
            product_ids=raw["product_ids"],
            category_ids=raw["category_ids"],
            shoppers=[Shopper(**s) for s in raw["shoppers"]],
            orders=[(o[0], o[1]) for o in raw["orders"]],
        )


async def _copy(dsn: str, tables: list[tuple[Any, list[dict[str, Any]]]]) -> None:
    """COPY rows into tables, in the column order of each model, then ANALYZE them."""
    connection = await asyncpg.connect(dsn)
    try:
        for table, rows in tables:
            columns = list(table.columns.keys())
            await connection.copy_records_to_table(
                table.name,
                records=[tuple(row[c] for c in columns) for row in rows],
                columns=columns,
            )
            await connection.execute(f'ANALYZE "{table.name}"')
    finally:
        await connection.close()


def catalog_rows(
    products: int, categories: int, seller_id: str, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    now = datetime.now(UTC)
    category_rows = [
        {
            "id": new_id(),
            "name": f"Category {index:02d} {uuid.uuid4().hex[:6]}",
            "description": "Seeded for the benchmark",
            "created_at": now,
            "updated_at": now,
        }
        for index in range(categories)
    ]
    product_rows = []
    for index in range(products):
        created = now - timedelta(minutes=products - index)
        words = " ".join(rng.sample(_WORDS, 2))
        product_rows.append(
            {
                "id": new_id(),
                "name": f"{words.title()} {index:05d}",
                "description": f"A {words} thing, item {index} of the benchmark catalog.",
                "price_minor": rng.randrange(100, 50_000),
                "currency_code": "USD",
                "stock": 10_000_000,  # never the limit of a benchmark
                "category_id": category_rows[index % categories]["id"],
                "seller_id": seller_id,
                "archived": False,
                "created_at": created,
                "updated_at": created,
            }
        )
    return category_rows, product_rows


def order_rows(
    owners: list[Shopper], per_owner: int, products: list[dict[str, Any]], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Past orders, PAID, of 1 to 3 items at catalog prices."""
    now = datetime.now(UTC)
    orders, items = [], []
    for owner in owners:
        for _ in range(per_owner):
            order_id = new_id()
            lines = rng.sample(products, rng.randint(1, 3))
            for position, product in enumerate(lines):
                items.append(
                    {
                        "order_id": order_id,
                        "position": position,
                        "product_id": product["id"],
                        "product_name": product["name"],
                        "seller_id": product["seller_id"],
                        "quantity": 1,
                        "unit_price_minor": product["price_minor"],
                    }
                )
            orders.append(
                {
                    "id": order_id,
                    "user_id": owner.id,
                    "status": OrderStatus.PAID,
                    "idempotency_key": uuid.uuid4().hex,
                    "request_hash": uuid.uuid4().hex * 2,
                    "currency_code": "USD",
                    "total_minor": sum(p["price_minor"] for p in lines),
                    "payment_method": "pm_card_visa",
                    "shipping_address": json.dumps({"line2": "", **ADDRESS}, sort_keys=True),
                    "cancel_reason": "",
                    "carrier": "",
                    "tracking_number": "",
                    "created_at": now,
                    "updated_at": now,
                    "paid_at": now,
                    "shipped_at": None,
                }
            )
    return orders, items


async def _signed_up(client: httpx.AsyncClient, email: str) -> Shopper:
    registered = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Bench"}
    )
    registered.raise_for_status()
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return Shopper(registered.json()["id"], email, login.json()["access_token"])


async def _seller(client: httpx.AsyncClient) -> str:
    admin = await client.post(
        "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    admin.raise_for_status()
    seller = await _signed_up(client, f"seller-{uuid.uuid4().hex[:8]}@example.com")
    promoted = await client.patch(
        f"/v1/users/{seller.id}",
        json={"role": "seller"},
        headers={"Authorization": f"Bearer {admin.json()['access_token']}"},
    )
    promoted.raise_for_status()
    return seller.id


async def sign_up(client: httpx.AsyncClient, count: int, parallel: int = 8) -> list[Shopper]:
    gate = asyncio.Semaphore(parallel)
    run = uuid.uuid4().hex[:6]

    async def one(index: int) -> Shopper:
        async with gate:
            return await _signed_up(client, f"shopper-{run}-{index}@example.com")

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def seed(
    stack: Stack,
    *,
    products: int,
    categories: int,
    shoppers: int,
    order_owners: int,
    orders_per_owner: int,
    seed_value: int = 8,
) -> Seeded:
    rng = random.Random(seed_value)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        seller_id = await _seller(client)
        people = await sign_up(client, shoppers)
    category_rows, product_rows = catalog_rows(products, categories, seller_id, rng)
    await _copy(
        stack.databases["product_service"],
        [(Category.__table__, category_rows), (Product.__table__, product_rows)],
    )
    owners = people[:order_owners]
    orders, items = order_rows(owners, orders_per_owner, product_rows, rng)
    # The same orders for scenario 3's floor, in its own database.
    for dsn in (stack.databases["order_service"], stack.floor_dsn):
        await _copy(dsn, [(Order.__table__, orders), (OrderItem.__table__, items)])
    tokens = {person.id: person.token for person in owners}
    return Seeded(
        product_ids=[row["id"] for row in product_rows],
        category_ids=[row["id"] for row in category_rows],
        shoppers=people,
        orders=[(order["id"], tokens[order["user_id"]]) for order in orders],
    )
