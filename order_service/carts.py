"""Carts: what a user means to buy, shown at today's prices, turned into an order at checkout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from meshkit.access import require_user
from meshkit.db import Database, utcnow
from meshkit.errors import FailedPrecondition, InvalidArgument, NotFound
from order_service.commands import MAX_QUANTITY, Address, PlaceOrder
from order_service.models import CartItem, Order
from order_service.orders import Orders
from order_service.reads import OrderRecord
from order_service.upstream import Catalog, ProductInfo

MAX_CART_LINES = 100


@dataclass(frozen=True)
class CartLine:
    product_id: str
    quantity: int
    product: ProductInfo | None  # None: the product no longer exists at all

    @property
    def archived(self) -> bool:
        return self.product is None or self.product.archived

    @property
    def short_of_stock(self) -> bool:
        return self.product is not None and self.product.stock < self.quantity


@dataclass(frozen=True)
class CartView:
    user_id: str
    lines: Sequence[CartLine]
    updated_at: datetime | None

    @property
    def currency_code(self) -> str:
        return next((line.product.currency_code for line in self.lines if line.product), "")

    @property
    def total_minor(self) -> int:
        """What checkout would charge now: lines that can be bought, at today's prices."""
        return sum(
            line.product.price_minor * line.quantity
            for line in self.lines
            if line.product is not None and not line.archived
        )


class Carts:
    def __init__(self, database: Database, catalog: Catalog, orders: Orders) -> None:
        self.db = database
        self.catalog = catalog
        self.orders = orders

    async def view(self) -> CartView:
        user_id = require_user().subject
        async with self.db.session() as session:
            items = (
                await session.scalars(
                    select(CartItem).where(CartItem.user_id == user_id).order_by(CartItem.added_at)
                )
            ).all()
        products = await asyncio.gather(*(self._product(item.product_id) for item in items))
        return CartView(
            user_id=user_id,
            lines=[
                CartLine(item.product_id, item.quantity, product)
                for item, product in zip(items, products, strict=True)
            ],
            updated_at=max((item.updated_at for item in items), default=None),
        )

    async def _product(self, product_id: str) -> ProductInfo | None:
        try:
            return (await self.catalog.products([product_id]))[product_id]
        except InvalidArgument:
            return None  # deleted from the catalog since it was added

    async def set_item(self, product_id: str, quantity: int) -> CartView:
        user_id = require_user().subject
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidArgument.for_field("quantity", f"must be between 1 and {MAX_QUANTITY}")
        if not product_id.strip():
            raise InvalidArgument.for_field("product_id", "is required")
        product = await self._product(product_id)
        if product is None:
            raise NotFound(f"No product has id {product_id!r}.")
        if product.archived:
            raise FailedPrecondition(f"{product.name} is no longer sold.")
        async with self.db.transaction() as session:
            item = await session.get(CartItem, (user_id, product_id))
            if item is None:
                count = len(
                    (
                        await session.scalars(
                            select(CartItem.product_id).where(CartItem.user_id == user_id)
                        )
                    ).all()
                )
                if count >= MAX_CART_LINES:
                    raise FailedPrecondition(f"A cart holds at most {MAX_CART_LINES} products.")
                now = utcnow()
                session.add(
                    CartItem(
                        user_id=user_id,
                        product_id=product_id,
                        quantity=quantity,
                        added_at=now,
                        updated_at=now,
                    )
                )
            else:
                item.quantity = quantity
                item.updated_at = utcnow()
        return await self.view()

    async def remove_item(self, product_id: str) -> CartView:
        user_id = require_user().subject
        async with self.db.transaction() as session:
            await session.execute(
                delete(CartItem).where(
                    CartItem.user_id == user_id, CartItem.product_id == product_id
                )
            )
        return await self.view()

    async def clear(self) -> CartView:
        user_id = require_user().subject
        async with self.db.transaction() as session:
            await session.execute(delete(CartItem).where(CartItem.user_id == user_id))
        return await self.view()

    async def checkout(
        self, idempotency_key: str, payment_method: str, address: Address
    ) -> Order | OrderRecord:
        """Place an order exactly as POST /v1/orders would, then empty the cart."""
        user_id = require_user().subject
        async with self.db.session() as session:
            items = (
                await session.scalars(select(CartItem).where(CartItem.user_id == user_id))
            ).all()
        lines = [(item.product_id, item.quantity) for item in items]
        if not lines:
            # A replay after a successful checkout finds the cart empty: return that order.
            existing = await self.orders.find_by_key(user_id, idempotency_key.strip())
            if existing is not None:
                return existing
            raise FailedPrecondition("The cart is empty.")
        command = PlaceOrder.validated(idempotency_key, lines, payment_method, address)
        order = await self.orders.place(command)
        async with self.db.transaction() as session:
            # Only what was ordered leaves the cart; anything added meanwhile stays.
            for line in command.lines:
                await session.execute(
                    delete(CartItem).where(
                        CartItem.user_id == user_id,
                        CartItem.product_id == line.product_id,
                        CartItem.quantity == line.quantity,
                    )
                )
        return order
