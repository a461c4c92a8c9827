"""The order service's unit of work: one transaction with its orders, timelines, carts and
the events it publishes."""

from __future__ import annotations

from meshkit.data import Transaction, UnitOfWork
from order_service.repository import CartRepository, OrderRepository, TimelineRepository


class OrderUnitOfWork(UnitOfWork):
    orders: OrderRepository
    timeline: TimelineRepository
    carts: CartRepository

    def attach(self, tx: Transaction) -> None:
        self.orders = OrderRepository(tx)
        self.timeline = TimelineRepository(tx)
        self.carts = CartRepository(tx)
