"""The product service's unit of work: one transaction over the catalog's repositories."""

from __future__ import annotations

from collections.abc import Callable

from meshkit.data import Transaction, UnitOfWork
from product_service.repository import (
    CategoryRepository,
    ProductRepository,
    ReservationRepository,
)


class CatalogUnitOfWork(UnitOfWork):
    """`async with uow: ...; await uow.commit()`, with the catalog's tables as repositories."""

    categories: CategoryRepository
    products: ProductRepository
    reservations: ReservationRepository

    def attach(self, tx: Transaction) -> None:
        self.categories = CategoryRepository(tx)
        self.products = ProductRepository(tx)
        self.reservations = ReservationRepository(tx)


# What a domain class is given to open one: `functools.partial(CatalogUnitOfWork, database)`.
CatalogUnitOfWorkFactory = Callable[[], CatalogUnitOfWork]
