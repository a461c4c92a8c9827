"""The payment service's unit of work: one transaction with its payments and its events."""

from __future__ import annotations

from meshkit.data import Transaction, UnitOfWork
from payment_service.repository import PaymentRepository


class PaymentUnitOfWork(UnitOfWork):
    payments: PaymentRepository

    def attach(self, tx: Transaction) -> None:
        self.payments = PaymentRepository(tx)
