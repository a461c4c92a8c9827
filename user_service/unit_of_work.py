"""The user service's unit of work: one transaction with its users and refresh tokens."""

from __future__ import annotations

from meshkit.data import Transaction, UnitOfWork
from user_service.repository import RefreshTokenRepository, UserRepository


class AccountsUnitOfWork(UnitOfWork):
    users: UserRepository
    refresh_tokens: RefreshTokenRepository

    def attach(self, tx: Transaction) -> None:
        self.users = UserRepository(tx)
        self.refresh_tokens = RefreshTokenRepository(tx)
