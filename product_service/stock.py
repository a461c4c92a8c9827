"""Stock reservations for orders: all or nothing, once per order, never below zero."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from meshkit.context import Principal, Role
from meshkit.data import Database, IntegrityViolation, utcnow
from meshkit.errors import (
    NUL,
    NUL_MESSAGE,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    quoted,
)
from meshkit.identity import authorize
from meshkit.rpc import PageTokenCodec, page_size
from meshkit.shielding import finish
from product_service.cache import CatalogCache
from product_service.errors import (
    MixedCurrencies,
    OutOfStock,
    ProductArchived,
    ProductNotFound,
    ReservationReleased,
)
from product_service.products import MAX_STOCK
from product_service.reads import held_reservations, load_product, load_reservations
from product_service.records import ProductRecord, ReservationRecord
from product_service.unit_of_work import CatalogUnitOfWorkFactory
from product_service.validation import check_id

logger = logging.getLogger(__name__)

MAX_ORDER_ID_LENGTH = 64
MAX_RESERVATION_ITEMS = 100
# Order ids in one page of held reservations.
MAX_HELD_PAGE = 1000


@dataclass(frozen=True, order=True)
class StockLine:
    product_id: str
    quantity: int


class _Short(Exception):
    """Not enough of a line's product: the reservation rolls back, then says why."""

    def __init__(self, line: StockLine) -> None:
        self.line = line


@dataclass(frozen=True)
class ReservationResult:
    order_id: str
    items: tuple[StockLine, ...]
    # True when an earlier call reserved this order already; this one changed nothing.
    already_reserved: bool
    # The products of `items`, in their order, as their stock was taken (for a repeat, as
    # they are now): what the order is priced by.
    products: tuple[ProductRecord, ...] = ()


@dataclass(frozen=True)
class Availability:
    available: bool
    stock: int


def _check_quantity(violations: list[FieldViolation], field: str, quantity: int) -> None:
    if quantity <= 0:
        violations.append(FieldViolation(field, "must be positive"))
    elif quantity > MAX_STOCK:
        violations.append(FieldViolation(field, f"must be at most {MAX_STOCK}"))


def _check_order_id(order_id: str) -> str:
    order_id = order_id.strip()
    if not order_id:
        raise InvalidArgument.for_field("order_id", "is required")
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        raise InvalidArgument.for_field(
            "order_id", f"must be at most {MAX_ORDER_ID_LENGTH} characters"
        )
    if NUL in order_id:
        raise InvalidArgument.for_field("order_id", NUL_MESSAGE)
    return order_id


def _lines(items: Sequence[StockLine]) -> tuple[StockLine, ...]:
    """Validated lines, sorted by product id: every reserve locks rows in the same order,
    so two reserves never wait on each other in a cycle (no deadlock)."""
    violations: list[FieldViolation] = []
    if not items:
        violations.append(FieldViolation("items", "must name at least one product"))
    elif len(items) > MAX_RESERVATION_ITEMS:
        violations.append(FieldViolation("items", f"must have at most {MAX_RESERVATION_ITEMS}"))
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not item.product_id:
            violations.append(FieldViolation(f"items[{index}].product_id", "is required"))
        elif NUL in item.product_id:
            violations.append(FieldViolation(f"items[{index}].product_id", NUL_MESSAGE))
        elif item.product_id in seen:
            violations.append(
                FieldViolation(f"items[{index}].product_id", "appears more than once")
            )
        seen.add(item.product_id)
        _check_quantity(violations, f"items[{index}].quantity", item.quantity)
    if violations:
        raise InvalidArgument("The reservation has invalid items.", violations)
    return tuple(sorted(items))


def _result(order_id: str, rows: Sequence[ReservationRecord]) -> ReservationResult:
    if any(row.released_at is not None for row in rows):
        raise ReservationReleased(
            f"The reservation of order {order_id!r} was released; an order reserves once."
        )
    return ReservationResult(
        order_id=order_id,
        items=tuple(sorted(StockLine(row.product_id, row.quantity) for row in rows)),
        already_reserved=True,
    )


class Stock:
    def __init__(
        self,
        database: Database,
        unit_of_work: CatalogUnitOfWorkFactory,
        cache: CatalogCache,
        page_tokens: PageTokenCodec,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.cache = cache
        self.page_tokens = page_tokens

    async def check(self, caller: Principal, product_id: str, quantity: int) -> Availability:
        """Whether `quantity` could be ordered now; reserves nothing."""
        authorize(caller, Role.SERVICE, Role.ADMIN)
        check_id(product_id, "product_id")
        violations: list[FieldViolation] = []
        _check_quantity(violations, "quantity", quantity)
        if violations:
            raise InvalidArgument("The stock check has invalid fields.", violations)
        product = await load_product(self.db, product_id)
        if product is None:
            raise ProductNotFound(f"No product has id {product_id!r}.")
        return Availability(
            available=not product.archived and product.stock >= quantity, stock=product.stock
        )

    async def reserve(
        self, caller: Principal, order_id: str, items: Sequence[StockLine]
    ) -> ReservationResult:
        """Take every item's quantity off stock for an order, or nothing at all.

        Idempotent per order id: a repeat (even a concurrent one) returns the first
        reservation with `already_reserved` set and takes nothing more.
        """
        authorize(caller, Role.SERVICE, Role.ADMIN)
        order_id = _check_order_id(order_id)
        lines = _lines(items)
        existing = await load_reservations(self.db, order_id)
        if existing:
            return await self._repeat(order_id, lines, existing)
        taken: list[ProductRecord] = []
        try:
            async with self.unit_of_work() as uow:
                for line in lines:
                    # One conditional UPDATE: the row lock makes concurrent takers queue,
                    # and each re-checks `stock >= quantity` after the one before it.
                    product = await uow.products.take_stock(line.product_id, line.quantity)
                    if product is None:
                        # Raising rolls back what the earlier lines took.
                        raise _Short(line)
                    taken.append(product)
                if len({product.currency_code for product in taken}) > 1:
                    # One order, one currency: refused before anything is taken for good.
                    raise MixedCurrencies(
                        "The products of one reservation must be priced in one currency."
                    )
                await uow.reservations.add(
                    order_id, [(line.product_id, line.quantity) for line in lines]
                )
                await uow.commit()
        except _Short as short:
            # Short, perhaps, of what a concurrent reserve of the same order just took: then
            # that reservation is the answer, as for a repeat.
            existing = await load_reservations(self.db, order_id)
            if existing:
                return await self._repeat(order_id, lines, existing)
            raise await self._shortage(short.line) from None
        except IntegrityViolation:
            # A concurrent reserve of the same order committed first; ours rolled back.
            existing = await load_reservations(self.db, order_id)
            if not existing:
                raise
            return await self._repeat(order_id, lines, existing)
        # Listings change only when a product leaves the in-stock filter.
        await finish(self._forget([(product.id, product.stock == 0) for product in taken]))
        return ReservationResult(
            order_id=order_id, items=lines, already_reserved=False, products=tuple(taken)
        )

    async def release(self, caller: Principal, order_id: str) -> bool:
        """Put an order's reserved stock back, once; False when there was nothing to release."""
        authorize(caller, Role.SERVICE, Role.ADMIN)
        order_id = _check_order_id(order_id)
        restocked: list[tuple[str, bool]] = []
        async with self.unit_of_work() as uow:
            released = await uow.reservations.release(order_id, utcnow())
            for product_id, quantity in released:  # sorted by product id, as reserve locks
                after = await uow.products.give_back_stock(product_id, quantity)
                restocked.append((product_id, after == quantity))
            await uow.commit()
        # Listings change only when a product comes back into the in-stock filter.
        await finish(self._forget(restocked))
        if restocked:
            logger.info("stock released", extra={"order_id": order_id, "items": len(restocked)})
        return bool(restocked)

    async def held(
        self,
        caller: Principal,
        start: datetime,
        end: datetime,
        requested_size: int,
        page_token: str,
    ) -> tuple[list[str], str]:
        """A page of the ids of orders whose stock is still reserved, reserved in [start, end),
        and the token of the next page (empty on the last)."""
        authorize(caller, Role.SERVICE)
        if end <= start:
            raise InvalidArgument.for_field("reserve_time_end", "must be after the start")
        limit = page_size(requested_size, default=MAX_HELD_PAGE, maximum=MAX_HELD_PAGE)
        window = f"held:{start.isoformat()}:{end.isoformat()}"
        after = self.page_tokens.decode(page_token, window)[0] if page_token else ""
        ids = await held_reservations(self.db, start, end, str(after), limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        return ids, self.page_tokens.encode([ids[-1]], window) if more else ""

    async def _forget(self, changed: list[tuple[str, bool]]) -> None:
        """The cached forms of products whose stock changed (and listings, when flagged).
        Run to the end (`finish`): the stock changed, whether or not the caller still waits."""
        for product_id, listings in changed:
            await self.cache.product_changed(product_id, listings=listings)

    async def _repeat(
        self,
        order_id: str,
        lines: tuple[StockLine, ...],
        existing: Sequence[ReservationRecord],
    ) -> ReservationResult:
        result = _result(order_id, existing)
        if result.items != lines:
            logger.warning(
                "order reserved again with other items; the first reservation stands",
                extra={"order_id": order_id},
            )
        products = [await load_product(self.db, line.product_id) for line in result.items]
        return dataclasses.replace(
            result, products=tuple(product for product in products if product is not None)
        )

    async def _shortage(self, line: StockLine) -> FailedPrecondition:
        """Why a line could not be reserved."""
        product = await load_product(self.db, line.product_id)
        if product is None:
            # A conflict, not NOT_FOUND: the reservation names it, and the caller (an order
            # being placed) says which of its items it was.
            return FailedPrecondition(f"No product has id {quoted(line.product_id)}.")
        if product.archived:
            return ProductArchived(f"Product {line.product_id!r} is no longer sold.")
        return OutOfStock(
            f"Not enough stock of product {line.product_id!r} ({product.name}): "
            f"{line.quantity} wanted, {product.stock} left."
        )
