"""What a round left behind, as plain records: what its clients saw, and what the suite read of
the mesh afterwards (SQL, queues, the mail sink, the gateway)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from chaos.load import Attempt
from chaos.mailbox import Mail

PENDING, PAID, SHIPPED, CANCELLED = "PENDING", "PAID", "SHIPPED", "CANCELLED"
FINAL = frozenset({PAID, SHIPPED, CANCELLED})


@dataclass(frozen=True)
class OrderFact:
    id: str
    user_id: str
    key: str
    status: str
    cancel_reason: str
    created_at: datetime
    # When it became PAID or CANCELLED; None while PENDING.
    final_at: datetime | None
    # (product id, quantity) per line.
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class PaymentFact:
    order_id: str
    status: str  # SUCCEEDED, FAILED or REFUNDED


@dataclass(frozen=True)
class DeadLetterFact:
    consumer: str
    message_id: str
    event_type: str


@dataclass(frozen=True)
class Observed:
    # Every order placed under one of the round's keys, whatever its clients were told.
    orders: tuple[OrderFact, ...]
    # Which of the order ids the clients were given exist.
    existing_ids: frozenset[str]
    payments: tuple[PaymentFact, ...]
    initial_stock: Mapping[str, int]
    stock: Mapping[str, int]
    # Reservations not released: (order id, product id, quantity). Only for explaining a
    # stock difference: a reservation of an order that is gone or cancelled is stock leaked.
    open_reservations: tuple[tuple[str, str, int], ...]
    dead_letters: tuple[DeadLetterFact, ...]
    mails: tuple[Mail, ...]
    # The email address of each customer, by user id.
    emails_of: Mapping[str, str]
    # Orders the gateway still answered with another status than the database's, after a
    # while to hear of the change.
    stale_reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class Round:
    fault: str
    attempts: tuple[Attempt, ...]
    fault_ended_at: datetime
    observed: Observed
    # (consumer, message id) that the fault sent to be dead-lettered, and must be.
    expected_dead_letters: frozenset[tuple[str, str]] = frozenset()
    # Message ids dead-lettered on purpose by this or an earlier round.
    tolerated_dead_letters: frozenset[str] = frozenset()
    # What went wrong with the fault itself, or the mesh around it.
    incidents: tuple[str, ...] = field(default_factory=tuple)
