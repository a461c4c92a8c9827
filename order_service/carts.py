"""Carts: what a user means to buy, shown at today's prices, turned into an order at checkout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshkit.data import Database, utcnow
from meshkit.errors import InvalidArgument, quoted
from meshkit.identity import require_user
from meshkit.shielding import finish
from order_service.commands import MAX_QUANTITY, Address, PlaceOrder
from order_service.errors import (
    CartEmpty,
    CartFull,
    CurrencyMismatch,
    ProductNotFound,
    ProductNotSold,
)
from order_service.models import CartItem, Order
from order_service.orders import Orders
from order_service.records import OrderRecord
from order_service.upstream import Catalog, ProductInfo

logger = logging.getLogger(__name__)

MAX_CART_LINES = 100
LINE_KEY = ("user_id", "product_id")  # the primary key of cart_items


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
    def currencies(self) -> frozenset[str]:
        """Currencies of the lines that can be bought."""
        return frozenset(
            line.product.currency_code
            for line in self.lines
            if line.product is not None and not line.archived
        )

    @property
    def currency_code(self) -> str:
        """The currency of the total; none for an empty cart, and none for a cart priced in
        several currencies: a sum across currencies means nothing, and checkout refuses it."""
        priced = self.currencies or frozenset(
            line.product.currency_code for line in self.lines if line.product is not None
        )
        return next(iter(priced)) if len(priced) == 1 else ""

    @property
    def total_minor(self) -> int:
        """What checkout would charge now: lines that can be bought, at today's prices."""
        return sum(
            line.product.price_minor * line.quantity
            for line in self.lines
            if line.product is not None
            and not line.archived
            and line.product.currency_code == self.currency_code
        )


def check_currency(cart: CartView, product: ProductInfo) -> None:
    """A product joins a cart only in the currency of what the cart can buy already: an
    order is charged in one currency, so a mixed cart could never be checked out.

    A cart can still end up mixed (two adds racing, a seller repricing in another
    currency); its view then shows no total, and checkout says why it refuses.
    """
    others = cart.currencies - {product.currency_code}
    if others:
        raise CurrencyMismatch(
            f"{product.name} is priced in {product.currency_code}, but this cart holds "
            f"products priced in {', '.join(sorted(others))}; check those out or remove "
            "them first."
        )


class Carts:
    def __init__(self, database: Database, catalog: Catalog, orders: Orders) -> None:
        self.db = database
        self.catalog = catalog
        self.orders = orders
        self._insert = sqlite_insert if database.is_sqlite else postgresql_insert

    async def view(self) -> CartView:
        return await self._view(require_user().subject)

    async def _view(
        self, user_id: str, known: Mapping[str, ProductInfo | None] | None = None
    ) -> CartView:
        """The cart as stored now, asking the catalog only for products not in `known`."""
        known = known or {}
        async with self.db.session() as session:
            items = (
                await session.scalars(
                    select(CartItem).where(CartItem.user_id == user_id).order_by(CartItem.added_at)
                )
            ).all()
        wanted = [item.product_id for item in items if item.product_id not in known]
        found = dict(
            zip(wanted, await asyncio.gather(*(self._product(pid) for pid in wanted)), strict=True)
        )
        products = {**known, **found}
        return CartView(
            user_id=user_id,
            lines=[
                CartLine(item.product_id, item.quantity, products[item.product_id])
                for item in items
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
        cart, product = await asyncio.gather(self._view(user_id), self._product(product_id))
        if product is None:
            raise ProductNotFound(f"No product has id {quoted(product_id)}.")
        if product.archived:
            raise ProductNotSold(f"{product.name} is no longer sold.")
        if all(line.product_id != product_id for line in cart.lines):
            # Checked before the write, so concurrent adds may pass it together: the limit
            # is a guard against runaway carts, not an exact count.
            if len(cart.lines) >= MAX_CART_LINES:
                raise CartFull(f"A cart holds at most {MAX_CART_LINES} products.")
            check_currency(cart, product)
        await self._upsert(user_id, product_id, quantity)
        known = {line.product_id: line.product for line in cart.lines}
        return await self._view(user_id, {**known, product_id: product})

    async def _upsert(self, user_id: str, product_id: str, quantity: int) -> None:
        """One statement, so that concurrent puts of one product all succeed, the last
        committed winning, where a read then an insert would collide on the key."""
        now = utcnow()
        statement = self._insert(CartItem).values(
            user_id=user_id, product_id=product_id, quantity=quantity, added_at=now, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=LINE_KEY,
            set_={"quantity": statement.excluded.quantity, "updated_at": now},
        )
        async with self.db.transaction() as session:
            await session.execute(statement)

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
        """Place an order exactly as POST /v1/orders would, from the lines of the cart.

        The lines are taken out of the cart before the order is placed, in one statement:
        of several checkouts of one cart at once, only one finds them and the others find
        the cart empty. If the order is not placed, they are put back.
        """
        user_id = require_user().subject
        taken = await self._take_lines(user_id)
        if not taken:
            # A replay after a successful checkout finds the cart empty: return that order.
            existing = await self.orders.find_by_key(user_id, idempotency_key.strip())
            if existing is not None:
                return existing
            raise CartEmpty("The cart is empty.")
        # Shielded: a client hanging up must neither leave its cart emptied with no order nor
        # get its lines back while the order it placed goes on being placed.
        return await finish(
            self._place_taken(user_id, taken, idempotency_key, payment_method, address)
        )

    async def _place_taken(
        self,
        user_id: str,
        taken: Sequence[CartItem],
        idempotency_key: str,
        payment_method: str,
        address: Address,
    ) -> Order | OrderRecord:
        """The order of the taken lines, or the lines back in the cart."""
        try:
            command = PlaceOrder.validated(
                idempotency_key,
                [(line.product_id, line.quantity) for line in taken],
                payment_method,
                address,
            )
            return await self.orders.place(command)
        except BaseException:
            await self._put_back(user_id, taken)
            raise

    async def _take_lines(self, user_id: str) -> Sequence[CartItem]:
        """Deletes the user's lines and returns them. On PostgreSQL a second delete waits for
        the first to commit and then finds nothing; SQLite runs one writer at a time."""
        async with self.db.transaction() as session:
            return (
                await session.scalars(
                    delete(CartItem)
                    .where(CartItem.user_id == user_id)
                    .returning(CartItem)
                    .execution_options(synchronize_session=False)
                )
            ).all()

    async def _put_back(self, user_id: str, lines: Sequence[CartItem]) -> None:
        """Returns taken lines to the cart as they were; a product put in the cart again
        meanwhile keeps its newer quantity."""
        statement = (
            self._insert(CartItem)
            .values(
                [
                    {
                        "user_id": line.user_id,
                        "product_id": line.product_id,
                        "quantity": line.quantity,
                        "added_at": line.added_at,
                        "updated_at": line.updated_at,
                    }
                    for line in lines
                ]
            )
            .on_conflict_do_nothing(index_elements=LINE_KEY)
        )
        try:
            async with self.db.transaction() as session:
                await session.execute(statement)
        except Exception:
            # The checkout's own error is what the caller must see; this one is for support.
            logger.exception(
                "could not put back the cart lines of user %s: %s",
                user_id,
                [(line.product_id, line.quantity) for line in lines],
            )
