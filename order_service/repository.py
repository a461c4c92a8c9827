"""The order service's repositories: orders, their timelines and carts, by prebuilt statements
on a unit of work's transaction.

Each statement is SQLAlchemy Core built once and run with parameters: on PostgreSQL on the
driver itself (`meshkit.data.transactions`), which keeps the saga's writes cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshkit.data import RowsInsert, Statement, Transaction
from order_service.models import CartItem, Order, OrderItem, TimelineEvent
from order_service.records import CartLineRecord, ItemRecord, OrderRecord

_orders: Table = Order.__table__  # type: ignore[assignment]
_timeline: Table = TimelineEvent.__table__  # type: ignore[assignment]
_items: Table = OrderItem.__table__  # type: ignore[assignment]
_cart: Table = CartItem.__table__  # type: ignore[assignment]

# The columns of an order and of its items (but the order's id): what `OrderRecord` and
# `ItemRecord` hold, what is written, and what the fast reads select.
ORDER_FIELDS = tuple(column.key for column in _orders.columns)
ITEM_FIELDS = tuple(column.key for column in _items.columns if column.key != "order_id")


def order_record(order: dict[str, Any], items: Sequence[dict[str, Any]]) -> OrderRecord:
    """An order's record from its row and its items' rows (in position order)."""
    return OrderRecord(
        **{name: order[name] for name in ORDER_FIELDS},
        items=tuple(ItemRecord(**{name: item[name] for name in ITEM_FIELDS}) for item in items),
    )


class Moved(NamedTuple):
    """An order that a transition moved: what its events and its metrics need."""

    user_id: str
    total_minor: int
    currency_code: str
    created_at: datetime


_ORDER = Statement(select(_orders).where(_orders.c.id == bindparam("order_id")))
_ORDER_BY_KEY = Statement(
    select(_orders).where(
        _orders.c.user_id == bindparam("user_id"),
        _orders.c.idempotency_key == bindparam("key"),
    )
)
_ITEMS = Statement(
    select(_items).where(_items.c.order_id == bindparam("order_id")).order_by(_items.c.position)
)
_ADD_ORDERS = RowsInsert(_orders, ORDER_FIELDS)
_ADD_ITEMS = RowsInsert(_items, ("order_id", *ITEM_FIELDS))
_STATUS_OF = Statement(select(_orders.c.status).where(_orders.c.id == bindparam("order_id")))
# Built once per set of columns it sets, run with parameters: every saga step moves an order.
_TRANSITIONS: dict[frozenset[str], Statement] = {}


def _transition(columns: frozenset[str]) -> Statement:
    statement = _TRANSITIONS.get(columns)
    if statement is None:
        statement = _TRANSITIONS[columns] = Statement(
            update(_orders)
            .where(_orders.c.id == bindparam("order_id"), _orders.c.status == bindparam("from"))
            .values({"status": bindparam("to"), **{name: bindparam(name) for name in columns}})
            .returning(
                _orders.c.user_id,
                _orders.c.total_minor,
                _orders.c.currency_code,
                _orders.c.created_at,
            )
        )
    return statement


class OrderRepository:
    """Orders with their items, as `OrderRecord`s."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def get(self, order_id: str) -> OrderRecord | None:
        """The order with its items."""
        row = await self.tx.fetchrow(_ORDER, {"order_id": order_id})
        if row is None:
            return None
        return order_record(row, await self.tx.fetch(_ITEMS, {"order_id": order_id}))

    async def by_idempotency_key(self, user_id: str, key: str) -> OrderRecord | None:
        """The order its owner placed with this Idempotency-Key, or None."""
        row = await self.tx.fetchrow(_ORDER_BY_KEY, {"user_id": user_id, "key": key})
        if row is None:
            return None
        return order_record(row, await self.tx.fetch(_ITEMS, {"order_id": row["id"]}))

    def add(self, order: OrderRecord) -> None:
        """The order and its items, written as the unit of work commits (`Transaction.hold`),
        with its timeline entries and events: a second order with the owner's idempotency key
        breaks the unique constraint then (`IntegrityViolation`)."""
        self.tx.hold(_ADD_ORDERS, [{name: getattr(order, name) for name in ORDER_FIELDS}])
        self.tx.hold(
            _ADD_ITEMS,
            [
                {"order_id": order.id, **{name: getattr(item, name) for name in ITEM_FIELDS}}
                for item in order.items
            ],
        )

    async def transition(
        self, order_id: str, from_status: str, to_status: str, **values: Any
    ) -> Moved | None:
        """Move an order on only from the state expected: a late or repeated event moves
        nothing.

        Returns who owns the moved order and its total (what the events it causes carry), or
        None when it did not move: no second statement to read them back.
        """
        row = await self.tx.fetchrow(
            _transition(frozenset(values)),
            {"order_id": order_id, "from": from_status, "to": to_status, **values},
        )
        if row is None:
            return None
        return Moved(row["user_id"], row["total_minor"], row["currency_code"], row["created_at"])

    async def status_of(self, order_id: str) -> str | None:
        row = await self.tx.fetchrow(_STATUS_OF, {"order_id": order_id})
        return row["status"] if row is not None else None


# Built once, run with parameters: every event of an order records one.
_TIMELINE_ENTRIES = RowsInsert(
    _timeline,
    ("event_id", "order_id", "event_type", "source", "occurred_at", "summary"),
    conflict_keys=("event_id",),
)


class TimelineRepository:
    """What happened to each order, one entry per event.

    Entries are written as the unit of work commits, with its other held rows
    (`Transaction.hold`): an event that moves an order records two (the one received, the one
    it causes), a batch of events shares one transaction, and a new order's entry goes in the
    statement that writes the order.
    """

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def record(
        self,
        *,
        event_id: str,
        order_id: str,
        event_type: str,
        source: str,
        occurred_at: datetime,
        summary: str,
    ) -> None:
        """Idempotent: the same event recorded twice is one entry."""
        self.tx.hold(
            _TIMELINE_ENTRIES,
            [
                {
                    "event_id": event_id,
                    "order_id": order_id,
                    "event_type": event_type,
                    "source": source,
                    "occurred_at": occurred_at,
                    "summary": summary[:500],
                }
            ],
        )


LINE_KEY = ("user_id", "product_id")  # the primary key of cart_items


def _put_line(insert: Any) -> Statement:
    # One statement, so that concurrent puts of one product all succeed, the last committed
    # winning, where a read then an insert would collide on the key.
    statement = insert(_cart)
    return Statement(
        statement.on_conflict_do_update(
            index_elements=LINE_KEY,
            set_={
                "quantity": statement.excluded.quantity,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


_PUT_LINE = {"sqlite": _put_line(sqlite_insert), "postgresql": _put_line(postgresql_insert)}
# A product put in the cart again meanwhile keeps its newer quantity.
_PUT_BACK = {
    "sqlite": Statement(sqlite_insert(_cart).on_conflict_do_nothing(index_elements=LINE_KEY)),
    "postgresql": Statement(
        postgresql_insert(_cart).on_conflict_do_nothing(index_elements=LINE_KEY)
    ),
}
_REMOVE_LINE = Statement(
    delete(_cart).where(
        _cart.c.user_id == bindparam("user_id"), _cart.c.product_id == bindparam("product_id")
    )
)
_CLEAR = Statement(delete(_cart).where(_cart.c.user_id == bindparam("user_id")))
_TAKE = Statement(
    delete(_cart).where(_cart.c.user_id == bindparam("user_id")).returning(*_cart.columns)
)
_LINES = Statement(
    select(_cart).where(_cart.c.user_id == bindparam("user_id")).order_by(_cart.c.added_at)
)


class CartRepository:
    """Users' carts, a line per product."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def lines(self, user_id: str) -> list[CartLineRecord]:
        """The user's lines, oldest first."""
        return [CartLineRecord(**row) for row in await self.tx.fetch(_LINES, {"user_id": user_id})]

    async def put(self, user_id: str, product_id: str, quantity: int, now: datetime) -> None:
        """Add the product, or set its quantity when the cart holds it already."""
        await self.tx.execute(
            _PUT_LINE[self.tx.dialect],
            {
                "user_id": user_id,
                "product_id": product_id,
                "quantity": quantity,
                "added_at": now,
                "updated_at": now,
            },
        )

    async def remove(self, user_id: str, product_id: str) -> None:
        await self.tx.execute(_REMOVE_LINE, {"user_id": user_id, "product_id": product_id})

    async def clear(self, user_id: str) -> None:
        await self.tx.execute(_CLEAR, {"user_id": user_id})

    async def take(self, user_id: str) -> list[CartLineRecord]:
        """Deletes the user's lines and returns them. On PostgreSQL a second take waits for the
        first to commit and then finds nothing; SQLite runs one writer at a time."""
        return [CartLineRecord(**row) for row in await self.tx.fetch(_TAKE, {"user_id": user_id})]

    async def put_back(self, lines: Sequence[CartLineRecord]) -> None:
        """Returns taken lines to their cart as they were."""
        await self.tx.execute_many(
            _PUT_BACK[self.tx.dialect],
            [
                {
                    "user_id": line.user_id,
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "added_at": line.added_at,
                    "updated_at": line.updated_at,
                }
                for line in lines
            ],
        )
