"""A round of reconciliation goes on past an order it cannot settle, and settles nothing on a
payment status it does not know (the saga's own moves are tested on the real services in
`tests/saga/test_reconciler.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecommerce.payment.v1 import payment_pb2
from order_service import reconciler
from order_service.reconciler import Reconciler

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


class _Payments:
    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    async def of_order(self, order_id: str) -> payment_pb2.Payment | None:
        answer = self.answers[order_id]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]


class _UnitOfWork:
    committed = 0

    async def __aenter__(self) -> _UnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        _UnitOfWork.committed += 1


class _Catalog:
    async def held_reservations(self, start: datetime, end: datetime) -> list[str]:
        return []


class _Saga:
    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self.cancelled: list[str] = []

    async def confirm(self, uow: Any, order_id: str, payment_id: str, summary: str) -> bool:
        self.confirmed.append(order_id)
        return True

    async def cancel_unpaid(self, uow: Any, order_id: str, reason: str, summary: str) -> bool:
        self.cancelled.append(order_id)
        return True


async def test_a_round_goes_on_past_an_order_it_cannot_settle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pending = [("broken", LONG_AGO), ("unknown", LONG_AGO), ("paid", LONG_AGO), ("old", LONG_AGO)]

    async def stale(db: object, before: datetime, limit: int) -> list[tuple[str, datetime]]:
        return pending

    monkeypatch.setattr(reconciler, "pending_since_before", stale)
    saga = _Saga()
    round_ = Reconciler(
        None,  # type: ignore[arg-type]
        _UnitOfWork,  # type: ignore[arg-type]
        saga,  # type: ignore[arg-type]
        _Payments(  # type: ignore[arg-type]
            {
                "broken": RuntimeError("a bug in one order's path"),
                "unknown": payment_pb2.Payment(id="p0", status=99),  # type: ignore[arg-type]
                "paid": payment_pb2.Payment(id="p1", status=payment_pb2.PAYMENT_STATUS_SUCCEEDED),
                "old": None,
            }
        ),
        _Catalog(),  # type: ignore[arg-type]
        after=timedelta(seconds=1),
        deadline=timedelta(minutes=5),
        interval_seconds=1,
    )
    outcomes = await round_.reconcile()
    assert outcomes == {"failed": 1, "waiting": 1, "confirmed": 1, "cancelled": 1}
    assert saga.confirmed == ["paid"]
    assert saga.cancelled == ["old"]  # no payment, past its deadline
