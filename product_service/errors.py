"""Why the product service refuses a request, by name: each maps to a gRPC status by its base."""

from __future__ import annotations

from meshkit.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied


class ProductNotFound(NotFound):
    """No product has this id."""

    reason = "PRODUCT_NOT_FOUND"


class CategoryNotFound(NotFound):
    """No category has this id."""

    reason = "CATEGORY_NOT_FOUND"


class CategoryNameTaken(AlreadyExists):
    """Another category has this name already."""

    reason = "CATEGORY_NAME_TAKEN"


class CategoryNotEmpty(FailedPrecondition):
    """A category with products, archived ones included, cannot be deleted."""

    reason = "CATEGORY_NOT_EMPTY"


class ProductArchived(FailedPrecondition):
    """The product was archived: it no longer changes and is no longer sold."""

    reason = "PRODUCT_ARCHIVED"


class MixedCurrencies(FailedPrecondition):
    """The products of one reservation are priced in more than one currency."""

    reason = "CURRENCY_MISMATCH"


class OutOfStock(FailedPrecondition):
    """Not enough stock of a product for a reservation; nothing was reserved."""

    reason = "OUT_OF_STOCK"


class ReservationReleased(FailedPrecondition):
    """The order's reservation was released: an order reserves stock once."""

    reason = "RESERVATION_RELEASED"


class NotProductSeller(PermissionDenied):
    """Only the product's seller (or an admin) may change it."""

    reason = "NOT_PRODUCT_SELLER"
