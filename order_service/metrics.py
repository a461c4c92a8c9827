"""Prometheus metrics of orders: every move from one status to another, and how long an order
waits to be paid; counted once the move commits, so a rolled-back one never is."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Final

from prometheus_client import Counter, Histogram

from meshkit.data import UnitOfWork
from order_service.models import OrderStatus

STATUS_TRANSITIONS = Counter(
    "orders_status_transitions_total",
    "Orders moved from one status to another (from NONE: placed), once the move committed.",
    ["from_status", "to_status"],
)
TIME_TO_PAID = Histogram(
    "order_time_to_paid_seconds",
    "Time from an order's creation to its payment (its move to PAID).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# The status before an order exists: a placement moves it to PENDING.
NONE: Final = "NONE"

# The moves the order service makes, bound once: every saga step counts one.
_MOVES: dict[tuple[str, str], Counter] = {
    move: STATUS_TRANSITIONS.labels(*move)
    for move in (
        (NONE, OrderStatus.PENDING),
        (OrderStatus.PENDING, OrderStatus.PAID),
        (OrderStatus.PENDING, OrderStatus.CANCELLED),
        (OrderStatus.PAID, OrderStatus.SHIPPED),
    )
}


def count_move(uow: UnitOfWork, from_status: str, to_status: str) -> None:
    """Count an order's move from `from_status` to `to_status` once `uow` commits."""
    counter = _MOVES.get((from_status, to_status))
    if counter is None:
        counter = _MOVES[from_status, to_status] = STATUS_TRANSITIONS.labels(from_status, to_status)
    uow.after_commit(counter.inc)


def time_to_paid(uow: UnitOfWork, created_at: datetime, paid_at: datetime) -> None:
    """Observe how long an order took from its creation to its payment once `uow` commits."""
    # Created on one replica's clock and paid on another's, an order can look paid early.
    seconds = max(0.0, (paid_at - created_at).total_seconds())
    uow.after_commit(functools.partial(TIME_TO_PAID.observe, seconds))
