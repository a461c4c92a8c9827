"""Carts: what a user means to buy, shown at today's prices, turned into an order at checkout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from meshkit.context import Principal
from meshkit.data import Database, utcnow
from meshkit.errors import InvalidArgument, quoted
from meshkit.identity import USERS, authorize
from meshkit.shielding import finish
from order_service.commands import MAX_QUANTITY, Address, PlaceOrder
from order_service.errors import (
    CartEmpty,
    CartFull,
    CurrencyMismatch,
    ProductNotFound,
    ProductNotSold,
)
from order_service.orders import Orders
from order_service.reads import cart_lines
from order_service.records import CartLineRecord, OrderRecord
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Catalog, ProductInfo

logger = logging.getLogger(__name__)

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
    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], OrderUnitOfWork],
        catalog: Catalog,
        orders: Orders,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.catalog = catalog
        self.orders = orders

    async def view(self, caller: Principal) -> CartView:
        return await self._view(authorize(caller, *USERS).subject)

    async def _view(
        self, user_id: str, known: Mapping[str, ProductInfo | None] | None = None
    ) -> CartView:
        """The cart as stored now, asking the catalog only for products not in `known`."""
        known = known or {}
        items = await cart_lines(self.db, user_id)
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

    async def set_item(self, caller: Principal, product_id: str, quantity: int) -> CartView:
        user_id = authorize(caller, *USERS).subject
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
        async with self.unit_of_work() as uow:
            await uow.carts.put(user_id, product_id, quantity, utcnow())
            await uow.commit()
        known = {line.product_id: line.product for line in cart.lines}
        return await self._view(user_id, {**known, product_id: product})

    async def remove_item(self, caller: Principal, product_id: str) -> CartView:
        user_id = authorize(caller, *USERS).subject
        async with self.unit_of_work() as uow:
            await uow.carts.remove(user_id, product_id)
            await uow.commit()
        return await self._view(user_id)

    async def clear(self, caller: Principal) -> CartView:
        user_id = authorize(caller, *USERS).subject
        async with self.unit_of_work() as uow:
            await uow.carts.clear(user_id)
            await uow.commit()
        return await self._view(user_id)

    async def checkout(
        self, caller: Principal, idempotency_key: str, payment_method: str, address: Address
    ) -> OrderRecord:
        """Place an order exactly as POST /v1/orders would, from the lines of the cart.

        The lines are taken out of the cart before the order is placed, in one statement:
        of several checkouts of one cart at once, only one finds them and the others find
        the cart empty. If the order is not placed, they are put back.
        """
        user_id = authorize(caller, *USERS).subject
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
            self._place_taken(caller, taken, idempotency_key, payment_method, address)
        )

    async def _place_taken(
        self,
        caller: Principal,
        taken: Sequence[CartLineRecord],
        idempotency_key: str,
        payment_method: str,
        address: Address,
    ) -> OrderRecord:
        """The order of the taken lines, or the lines back in the cart."""
        try:
            command = PlaceOrder.validated(
                idempotency_key,
                [(line.product_id, line.quantity) for line in taken],
                payment_method,
                address,
            )
            return await self.orders.place(caller, command)
        except BaseException:
            await self._put_back(caller.subject, taken)
            raise

    async def _take_lines(self, user_id: str) -> Sequence[CartLineRecord]:
        """Takes the user's lines out of the cart, in one statement (`CartRepository.take`)."""
        async with self.unit_of_work() as uow:
            taken = await uow.carts.take(user_id)
            await uow.commit()
        return taken

    async def _put_back(self, user_id: str, lines: Sequence[CartLineRecord]) -> None:
        """Returns taken lines to the cart as they were; a product put in the cart again
        meanwhile keeps its newer quantity."""
        try:
            async with self.unit_of_work() as uow:
                await uow.carts.put_back(lines)
                await uow.commit()
        except Exception:
            # The checkout's own error is what the caller must see; this one is for support.
            logger.exception(
                "could not put back the cart lines of user %s: %s",
                user_id,
                [(line.product_id, line.quantity) for line in lines],
            )
