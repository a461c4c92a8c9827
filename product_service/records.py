"""The catalog as the domain sees it: plain records, one shape per table, read and written alike."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    """A category: the columns of `models.Category`."""

    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """A product, archived or not: the columns of `models.Product`, which its message shows."""

    id: str
    name: str
    description: str
    price_minor: int
    currency_code: str
    stock: int
    category_id: str | None
    seller_id: str
    archived: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    """Stock taken for one order, of one product: the columns of `models.Reservation`."""

    order_id: str
    product_id: str
    quantity: int
    created_at: datetime
    released_at: datetime | None


# The fields of each record, in order: the names of its table's columns too.
CATEGORY_FIELDS = tuple(field.name for field in fields(CategoryRecord))
PRODUCT_FIELDS = tuple(field.name for field in fields(ProductRecord))
RESERVATION_FIELDS = tuple(field.name for field in fields(ReservationRecord))
