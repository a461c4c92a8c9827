"""Reads and writes of payments: a repository for units of work, and the one read outside them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from meshkit.data import Database, Statement, Transaction
from payment_service.models import Payment
from payment_service.records import PaymentRecord

_payments: Table = Payment.__table__  # type: ignore[assignment]

# Built once, run with parameters: every order is charged once. An insert that writes nothing
# when the order has its payment already (its unique order_id).
_CLAIM_PAYMENT = {
    "postgresql": Statement(
        postgresql_insert(_payments).on_conflict_do_nothing(index_elements=["order_id"])
    ),
    "sqlite": Statement(
        sqlite_insert(_payments).on_conflict_do_nothing(index_elements=["order_id"])
    ),
}
# Never committed as PENDING: the charge's outcome replaces it in the same transaction.
_RECORD_OUTCOME = Statement(
    update(_payments)
    .where(_payments.c.id == bindparam("payment"))
    .values(
        status=bindparam("status"),
        failure_code=bindparam("failure_code"),
        failure_reason=bindparam("failure_reason"),
    )
)
_PAYMENT_OF_ORDER = Statement(
    select(_payments).where(_payments.c.order_id == bindparam("order_id"))
)
_MARK_REFUNDED = Statement(
    update(_payments)
    .where(_payments.c.order_id == bindparam("refunded_order"), _payments.c.status == "SUCCEEDED")
    .values(status="REFUNDED", refunded_at=bindparam("now"))
)


class PaymentRepository:
    """The payments of one unit of work, by prebuilt statements on its transaction."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def of_order(self, order_id: str) -> PaymentRecord | None:
        """The order's one payment, or None when it has none yet."""
        row = await self.tx.fetchrow(_PAYMENT_OF_ORDER, {"order_id": order_id})
        return PaymentRecord(**row) if row is not None else None

    async def claim(self, payment: PaymentRecord) -> bool:
        """Add the order's one payment row unless it has one: False, having written nothing,
        when it does. A claim of the same order's row by a transaction not yet committed is
        waited for, then seen."""
        return bool(await self.tx.execute(_CLAIM_PAYMENT[self.tx.dialect], asdict(payment)))

    async def record_outcome(
        self, payment_id: str, *, status: str, failure_code: str, failure_reason: str
    ) -> None:
        """Mark a payment SUCCEEDED or FAILED, with why it failed."""
        await self.tx.execute(
            _RECORD_OUTCOME,
            {
                "payment": payment_id,
                "status": status,
                "failure_code": failure_code,
                "failure_reason": failure_reason,
            },
        )

    async def mark_refunded(self, order_id: str, now: datetime) -> bool:
        """Mark the order's payment REFUNDED only from SUCCEEDED: of two concurrent refunds,
        exactly one marks it."""
        return bool(await self.tx.execute(_MARK_REFUNDED, {"refunded_order": order_id, "now": now}))


async def load_payment(db: Database, order_id: str) -> PaymentRecord | None:
    """The order's payment as committed, outside any unit of work: the read of GetPayment."""
    async with db.session() as session:
        row = (await session.execute(_PAYMENT_OF_ORDER.statement, {"order_id": order_id})).first()
    return PaymentRecord(**row._mapping) if row is not None else None
