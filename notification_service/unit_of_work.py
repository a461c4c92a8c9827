"""The notification service's unit of work: one transaction over its notifications."""

from __future__ import annotations

from meshkit.data import Transaction, UnitOfWork
from notification_service.repository import NotificationRepository


class NotificationUnitOfWork(UnitOfWork):
    notifications: NotificationRepository

    def attach(self, tx: Transaction) -> None:
        self.notifications = NotificationRepository(tx)
