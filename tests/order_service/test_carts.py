"""Carts on PostgreSQL and on SQLite: concurrent puts and checkouts, and carts of one currency.

The catalog and the user service are fakes; the database, the orders and the outbox are real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TypeVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.pool import QueuePool

from meshkit.context import Principal, Role
from meshkit.data import Database
from meshkit.errors import FailedPrecondition, InvalidArgument
from meshkit.messaging import Outbox
from meshkit.rpc import PageTokenCodec
from order_service import upstream
from order_service.carts import Carts, CartView
from order_service.commands import Address
from order_service.messages import cart_message
from order_service.models import Order, metadata, outbox
from order_service.orders import SERVICE_NAME, Orders
from order_service.records import OrderRecord
from order_service.unit_of_work import OrderUnitOfWork
from order_service.upstream import Line, ProductInfo
from tests.conftest import DatabaseFactory
from tests.support import eventually

pytestmark = pytest.mark.integration

T = TypeVar("T")
Hook = Callable[[], Awaitable[None]]

ADDRESS = Address("Ada", "1 Main St", "", "London", "N1", "GB")
LAMP = ProductInfo("lamp", "Lamp", "s1", 1_999, "USD", 10, archived=False)
DESK = ProductInfo("desk", "Desk", "s1", 4_999, "USD", 10, archived=False)
CLOCK = ProductInfo("clock", "Clock", "s2", 2_500, "EUR", 10, archived=False)
DEADLINE = 10.0

BUYER = Principal("u1", Role.CUSTOMER, "t")


class Meeting:
    """Holds each caller of `arrive` until every one of `parties` has arrived or ended, so
    that concurrent calls are certain to overlap at that point, however they are scheduled.

    A party that arrived and later ends counts again, harmlessly: the meeting has begun.
    """

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.present = 0
        self.begun = asyncio.Event()

    def _count_one(self) -> None:
        self.present += 1
        if self.present >= self.parties:
            self.begun.set()

    async def arrive(self) -> None:
        self._count_one()
        async with asyncio.timeout(DEADLINE):
            await self.begun.wait()

    async def attend(self, call: Awaitable[T]) -> T:
        try:
            return await call
        finally:
            self._count_one()

    async def gather(self, calls: Iterable[Awaitable[T]]) -> list[T | BaseException]:
        return await asyncio.gather(*(self.attend(call) for call in calls), return_exceptions=True)


class Shelf(upstream.Catalog):
    """The product service's answers, from a dict the test edits."""

    def __init__(self, *products: ProductInfo) -> None:
        self.items = {product.id: product for product in products}
        self.reservations: dict[str, tuple[Line, ...]] = {}
        self.out_of_stock = False
        self.hook: Hook | None = None

    async def products(self, ids: Sequence[str]) -> dict[str, ProductInfo]:
        if self.hook is not None:
            await self.hook()
        unknown = [pid for pid in ids if pid not in self.items]
        if unknown:
            raise InvalidArgument("Some items name products that do not exist.")
        return {pid: self.items[pid] for pid in ids}

    async def reserve(self, order_id: str, lines: Iterable[Line]) -> dict[str, ProductInfo]:
        lines = tuple(lines)
        if self.out_of_stock or any(line.product_id not in self.items for line in lines):
            raise FailedPrecondition("Not enough stock.")
        self.reservations[order_id] = lines
        # Priced as the stock is taken, as the product service answers.
        return {line.product_id: self.items[line.product_id] for line in lines}

    async def release(self, order_id: str) -> bool:
        return self.reservations.pop(order_id, None) is not None


class Accounts(upstream.Users):
    """Every user is active; `hook` runs first, where an order starts being placed."""

    def __init__(self) -> None:
        self.hook: Hook | None = None

    async def is_active(self, user_id: str) -> bool:
        if self.hook is not None:
            await self.hook()
        return True


@pytest.fixture
async def database(database_on_each_backend: DatabaseFactory) -> AsyncIterator[Database]:
    created = await database_on_each_backend(metadata)
    # Each concurrent writer holds a connection of the driver's pool (as many as given):
    # room for the four that the concurrency tests start at once.
    async with Database(created.url, pool_size=8) as database:
        yield database


@pytest.fixture
def shelf() -> Shelf:
    return Shelf(LAMP, DESK, CLOCK)


@pytest.fixture
def accounts() -> Accounts:
    return Accounts()


@pytest.fixture
async def carts(database: Database, shelf: Shelf, accounts: Accounts) -> Carts:
    events = Outbox(outbox, SERVICE_NAME)

    def unit_of_work() -> OrderUnitOfWork:
        return OrderUnitOfWork(database, events)

    orders = Orders(database, unit_of_work, shelf, accounts, PageTokenCodec(b"secret"))
    return Carts(database, unit_of_work, shelf, orders)


def contents(cart: CartView) -> list[tuple[str, int]]:
    return [(line.product_id, line.quantity) for line in cart.lines]


async def order_count(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


@asynccontextmanager
async def cart_writes_held(database: Database) -> AsyncIterator[Callable[[int], Awaitable[bool]]]:
    """Holds back every write to the cart table, not its reads, until the block ends.

    Gives a probe of how many transactions wait to write: once all the writers a test starts
    wait, each has read whatever it reads first, and none has written yet.
    """
    async with Database(database.url, pool_size=1) as holder, holder.engine.connect() as lock:
        if database.is_sqlite:
            # The single writer's lock; readers carry on beside it (WAL). Writers wait in
            # SQLite's busy handler, each holding a connection of the pool.
            await lock.exec_driver_sql("BEGIN IMMEDIATE")
            pool = database.engine.pool
            assert isinstance(pool, QueuePool)

            async def waiting(writers: int) -> bool:
                return pool.checkedout() >= writers
        else:
            await lock.execute(text("LOCK TABLE cart_items IN SHARE MODE"))

            async def waiting(writers: int) -> bool:
                blocked = await lock.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = relation"
                        " WHERE relname = 'cart_items' AND NOT granted"
                    )
                )
                return int(blocked or 0) >= writers

        yield waiting
        await lock.commit()


async def checkout(carts: Carts, key: str) -> OrderRecord:
    return await carts.checkout(BUYER, key, "pm_card_visa", ADDRESS)


# --- concurrent puts ----------------------------------------------------------------------


async def test_concurrent_puts_of_a_new_product_all_succeed(
    carts: Carts, database: Database
) -> None:
    async with cart_writes_held(database) as writers_waiting:
        puts = [asyncio.create_task(carts.set_item(BUYER, "lamp", q)) for q in (1, 2, 3, 4)]
        await eventually(
            lambda: writers_waiting(4), timeout=4.0, message="four puts waiting to write"
        )
    results = await asyncio.gather(*puts, return_exceptions=True)

    assert not [r for r in results if isinstance(r, BaseException)], results
    cart = await carts.view(BUYER)
    assert len(cart.lines) == 1 and cart.lines[0].product_id == "lamp"
    assert cart.lines[0].quantity in {1, 2, 3, 4}


async def test_a_put_replaces_the_quantity_and_keeps_the_place(carts: Carts) -> None:
    await carts.set_item(BUYER, "lamp", 1)
    await carts.set_item(BUYER, "desk", 1)
    cart = await carts.set_item(BUYER, "lamp", 5)
    assert contents(cart) == [("lamp", 5), ("desk", 1)]


# --- one currency per cart ----------------------------------------------------------------


async def test_a_product_in_another_currency_is_refused(carts: Carts) -> None:
    await carts.set_item(BUYER, "lamp", 2)
    with pytest.raises(FailedPrecondition, match=r"Clock is priced in EUR.*priced in USD"):
        await carts.set_item(BUYER, "clock", 1)
    cart = await carts.view(BUYER)
    assert contents(cart) == [("lamp", 2)]
    assert (cart.total_minor, cart.currency_code) == (3_998, "USD")


async def test_a_cart_mixed_by_a_repricing_shows_no_total(carts: Carts, shelf: Shelf) -> None:
    await carts.set_item(BUYER, "lamp", 2)
    await carts.set_item(BUYER, "desk", 1)
    shelf.items["desk"] = replace(DESK, currency_code="EUR")

    cart = await carts.view(BUYER)
    assert cart.currency_code == ""
    message = cart_message(cart)
    assert not message.HasField("total")
    # Each line still shows its own price, in its own currency.
    assert [item.line_total.currency_code for item in message.items] == ["USD", "EUR"]
    # What is in the cart may still change; checkout says why it refuses.
    assert contents(await carts.set_item(BUYER, "lamp", 3)) == [("lamp", 3), ("desk", 1)]
    with pytest.raises(InvalidArgument, match="one currency"):
        await checkout(carts, "k1")
    assert shelf.reservations == {}  # nothing kept reserved


async def test_archived_lines_neither_price_nor_block_the_cart(carts: Carts, shelf: Shelf) -> None:
    await carts.set_item(BUYER, "clock", 1)
    shelf.items["clock"] = replace(CLOCK, archived=True)

    cart = await carts.set_item(BUYER, "lamp", 2)

    assert contents(cart) == [("clock", 1), ("lamp", 2)]
    assert (cart.total_minor, cart.currency_code) == (3_998, "USD")


# --- checkout -------------------------------------------------------------------------------


async def test_concurrent_checkouts_of_one_cart_place_one_order(
    carts: Carts, database: Database, shelf: Shelf, accounts: Accounts
) -> None:
    await carts.set_item(BUYER, "lamp", 1)
    meeting = Meeting(3)
    accounts.hook = meeting.arrive  # a checkout that got this far is placing an order

    results = await meeting.gather(checkout(carts, key) for key in ("k1", "k2", "k3"))

    placed = [r for r in results if isinstance(r, OrderRecord)]
    refused = [r for r in results if isinstance(r, FailedPrecondition)]
    assert len(placed) == 1 and len(refused) == 2, results
    assert {error.message for error in refused} == {"The cart is empty."}
    assert await order_count(database) == 1
    assert list(shelf.reservations) == [placed[0].id]
    assert contents(await carts.view(BUYER)) == []


async def test_a_checkout_that_fails_leaves_the_cart_as_it_was(
    carts: Carts, database: Database, shelf: Shelf
) -> None:
    await carts.set_item(BUYER, "lamp", 2)
    await carts.set_item(BUYER, "desk", 1)
    before = await carts.view(BUYER)
    shelf.out_of_stock = True

    with pytest.raises(FailedPrecondition, match="Not enough stock"):
        await checkout(carts, "k1")

    assert await carts.view(BUYER) == before
    assert await order_count(database) == 0


async def _leave_midway(carts: Carts, accounts: Accounts, then: Hook) -> None:
    """Checks out, the caller leaving while the order is being placed; `then` runs next."""
    placing, proceed = asyncio.Event(), asyncio.Event()

    async def wait_for_the_test() -> None:
        placing.set()
        async with asyncio.timeout(DEADLINE):
            await proceed.wait()
        await then()

    accounts.hook = wait_for_the_test
    task = asyncio.create_task(checkout(carts, "k1"))
    async with asyncio.timeout(DEADLINE):
        await placing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    proceed.set()


async def test_a_checkout_whose_caller_leaves_midway_still_places_the_order(
    carts: Carts, accounts: Accounts, database: Database
) -> None:
    # The outcome is the placement's, not the hang-up's: no cart given back beside an order.
    await carts.set_item(BUYER, "lamp", 2)

    async def nothing() -> None:
        return None

    await _leave_midway(carts, accounts, nothing)

    async def placed() -> bool:
        return await order_count(database) == 1

    await eventually(placed, timeout=DEADLINE, message="the order is placed")
    assert contents(await carts.view(BUYER)) == []


async def test_a_checkout_that_fails_after_its_caller_left_gives_the_cart_back(
    carts: Carts, accounts: Accounts, database: Database
) -> None:
    await carts.set_item(BUYER, "lamp", 2)
    before = await carts.view(BUYER)

    async def fail() -> None:
        raise FailedPrecondition("the user service said no")

    await _leave_midway(carts, accounts, fail)

    async def given_back() -> bool:
        return await carts.view(BUYER) == before

    await eventually(given_back, timeout=DEADLINE, message="the lines are back in the cart")
    assert await order_count(database) == 0


async def test_a_product_put_in_the_cart_during_a_checkout_stays(
    carts: Carts, accounts: Accounts
) -> None:
    await carts.set_item(BUYER, "lamp", 2)
    placing, proceed = asyncio.Event(), asyncio.Event()

    async def wait_for_the_test() -> None:
        placing.set()
        async with asyncio.timeout(DEADLINE):
            await proceed.wait()

    accounts.hook = wait_for_the_test
    task = asyncio.create_task(checkout(carts, "k1"))
    async with asyncio.timeout(DEADLINE):
        await placing.wait()
    await carts.set_item(BUYER, "desk", 1)
    await carts.set_item(BUYER, "lamp", 7)  # a new wish: not what is being ordered
    proceed.set()
    order = await task

    assert [(item.product_id, item.quantity) for item in order.items] == [("lamp", 2)]
    assert sorted(contents(await carts.view(BUYER))) == [("desk", 1), ("lamp", 7)]


async def test_a_replayed_checkout_answers_its_order_and_another_finds_the_cart_empty(
    carts: Carts, database: Database
) -> None:
    await carts.set_item(BUYER, "lamp", 1)
    order = await checkout(carts, "k1")

    assert (await checkout(carts, "k1")).id == order.id
    with pytest.raises(FailedPrecondition, match="The cart is empty"):
        await checkout(carts, "k2")
    assert await order_count(database) == 1
